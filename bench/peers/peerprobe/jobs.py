"""The APScheduler job: the probe body, wrapped as django-apscheduler's README wraps jobs that use the
database."""

import time

from django_apscheduler import util

from peerprobe.models import BodyStart


@util.close_old_connections
def probe(job: str) -> None:
    began = time.time()
    BodyStart.objects.create(job=job, began=began)
