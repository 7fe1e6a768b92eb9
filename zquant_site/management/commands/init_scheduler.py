"""Publish the registered calendars, then create the demo tasks and workflows; running it again changes nothing."""

from django.core.management.base import BaseCommand

from scheduler_app.calendars import calendar_sources_publish
from scheduler_app.services.permissions import SYSTEM
from zquant_site.demo import demo_tasks_create


class Command(BaseCommand):
    help = (
        "Publish the calendars apps offer (the market-data app's trading calendar), then create zquant's example "
        "tasks, data pipeline steps and workflows (idempotent)."
    )

    def handle(self, *args, **options) -> None:
        calendars = calendar_sources_publish()
        for name in calendars.published:
            self.stdout.write(f"calendar {name} published")
        for line in calendars.refused:
            self.stderr.write(f"calendar {line}")
        # A management command is the server's operator acting: the system, not a user of the site.
        report = demo_tasks_create(user=SYSTEM)
        for name in report.created:
            self.stdout.write(f"created  {name}")
        for name in report.windows:
            self.stdout.write(f"created  blackout window {name} (disabled: an example)")
        for line in report.skipped:
            self.stderr.write(f"skipped  {line}")
        self.stdout.write(
            self.style.SUCCESS(f"{len(report.created)} tasks created, {len(report.existing)} already present.")
        )
