"""Create the demo tasks and workflows; running it again changes nothing."""

from django.core.management.base import BaseCommand

from scheduler_app.services.permissions import SYSTEM
from zquant_site.demo import demo_tasks_create


class Command(BaseCommand):
    help = "Create zquant's example tasks, data pipeline steps and workflows (idempotent)."

    def handle(self, *args, **options) -> None:
        # A management command is the server's operator acting: the system, not a user of the site.
        report = demo_tasks_create(user=SYSTEM)
        for name in report.created:
            self.stdout.write(f"created  {name}")
        self.stdout.write(
            self.style.SUCCESS(f"{len(report.created)} tasks created, {len(report.existing)} already present.")
        )
