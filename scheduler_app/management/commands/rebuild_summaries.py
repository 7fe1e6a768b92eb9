"""Recompute each task's stored latest execution and the day statistics from the executions that exist."""

from django.core.management.base import BaseCommand

from scheduler_app.runtime.summaries import summaries_rebuild


class Command(BaseCommand):
    help = (
        "Recompute every task's stored latest execution and the per-day statistics from the executions "
        "there are now (after rows were written or deleted behind the scheduler's back)."
    )

    def handle(self, *args, **options) -> None:
        tasks, rows = summaries_rebuild()
        self.stdout.write(f"recomputed {tasks} tasks and {rows} statistics rows")
