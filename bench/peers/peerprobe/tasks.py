"""The Celery task celery-beat sends: the probe body."""

import time

from celery import shared_task

from peerprobe.models import BodyStart


@shared_task(ignore_result=True)
def probe(job: str) -> None:
    began = time.time()
    BodyStart.objects.create(job=job, began=began)
