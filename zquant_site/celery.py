"""The Celery app of the site (optional: `pip install ".[celery]"`, SCHEDULER_EXECUTION_BACKEND=celery).

Workers: `celery -A zquant_site worker -Q zquant --pool threads --concurrency 8 -l INFO`
(docs/scaling.md). Settings come from Django's settings, `CELERY_*` names (zquant_site/settings.py
reads the broker URL and the rest from the environment). Nothing imports this module unless Celery
is used, so the default install does not need Celery.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import celeryd_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zquant_site.settings")

app = Celery("zquant_site", include=["scheduler_app.celery_tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@celeryd_init.connect
def harden_worker(**kwargs) -> None:
    """A worker runs command tasks like the scheduler does: it is made non-dumpable before its pool
    starts (prefork children inherit it through fork), so commands cannot read its secrets via /proc."""
    from scheduler_app.executors.sandbox import harden_scheduler_process

    harden_scheduler_process()
