"""Create the demo tasks and workflows; running it again changes nothing."""

from django.core.management.base import BaseCommand

from zquant_site.demo import demo_tasks_create


class Command(BaseCommand):
    help = "Create zquant's example tasks, data pipeline steps and workflows (idempotent)."

    def handle(self, *args, **options) -> None:
        report = demo_tasks_create()
        for name in report.created:
            self.stdout.write(f"created  {name}")
        self.stdout.write(
            self.style.SUCCESS(f"{len(report.created)} tasks created, {len(report.existing)} already present.")
        )
