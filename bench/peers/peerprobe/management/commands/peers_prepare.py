"""Empty the probe table and, on the celery-beat project, replace the periodic tasks with COUNT probes on
the workload's schedule (the django-apscheduler command adds its own jobs)."""

import json

from django.apps import apps
from django.core.management.base import BaseCommand

from peerprobe.models import BodyStart


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("--kind", choices=["cron", "interval"], required=True)
        parser.add_argument("--count", type=int, required=True)

    def handle(self, *args, kind, count, **options):
        BodyStart.objects.all().delete()
        if apps.is_installed("django_apscheduler"):
            from django_apscheduler.models import DjangoJob, DjangoJobExecution

            DjangoJobExecution.objects.all().delete()
            DjangoJob.objects.all().delete()
        if apps.is_installed("django_celery_beat"):
            from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

            PeriodicTask.objects.all().delete()
            if kind == "cron":
                schedule = {"crontab": CrontabSchedule.objects.get_or_create(minute="*", hour="*", timezone="UTC")[0]}
            else:
                every = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)[0]
                schedule = {"interval": every}
            for i in range(count):
                PeriodicTask.objects.create(
                    name=f"probe-{i}", task="peerprobe.tasks.probe", args=json.dumps([f"probe-{i}"]), **schedule
                )
