"""django-apscheduler's README command (a BlockingScheduler on the DjangoJobStore), with COUNT probe jobs
on the workload's schedule in place of `my_job`."""

from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from django.conf import settings
from django.core.management.base import BaseCommand
from django_apscheduler.jobstores import DjangoJobStore

from peerprobe.jobs import probe


class Command(BaseCommand):
    help = "Runs APScheduler."

    def add_arguments(self, parser):
        parser.add_argument("--kind", choices=["cron", "interval"], required=True)
        parser.add_argument("--count", type=int, required=True)

    def handle(self, *args, kind, count, **options):
        scheduler = BlockingScheduler(timezone=settings.TIME_ZONE)
        scheduler.add_jobstore(DjangoJobStore(), "default")
        # Interval runs on the whole-second grid, like ours and like celery-beat's planned grid below.
        first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
        for i in range(count):
            trigger = CronTrigger(minute="*") if kind == "cron" else IntervalTrigger(seconds=1, start_date=first)
            scheduler.add_job(
                probe, trigger=trigger, args=[f"probe-{i}"], id=f"probe-{i}", max_instances=1, replace_existing=True
            )
        try:
            scheduler.start()
        except KeyboardInterrupt:
            scheduler.shutdown()
