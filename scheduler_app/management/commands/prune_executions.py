"""Delete old executions now, by the retention rules the leader applies (scheduling/retention.py)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from scheduler_app import selectors
from scheduler_app.runtime.clock import db_now
from scheduler_app.scheduling.retention import AGE, COUNT, retention_run


class Command(BaseCommand):
    help = (
        "Delete finished executions older than the retention days or beyond the per-task count (keeping each "
        "task's last success and last failure and what active runs need), in small batches."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Print what would be deleted, per task; delete nothing."
        )
        parser.add_argument(
            "--batch-size", type=int, default=None, help="Rows per delete (SCHEDULER_RETENTION_BATCH_SIZE)."
        )

    def handle(self, *args, **options) -> None:
        batch_size = options["batch_size"]
        if batch_size is not None and batch_size <= 0:
            raise CommandError("--batch-size must be positive")
        dry_run = options["dry_run"]
        try:
            report = retention_run(now=db_now(), dry_run=dry_run, batch_size=batch_size)
        except ValueError as error:  # a retention setting that is not a number
            raise CommandError(f"retention settings: {error}") from error
        per_task = report.per_task()
        names = selectors.task_names(task_ids=set(per_task))
        verb = "would delete" if dry_run else "deleted"
        for task_id, rules in per_task.items():
            name = names.get(task_id, "(task deleted)")
            total = rules[AGE] + rules[COUNT]
            self.stdout.write(
                f"task {task_id} {name!r}: {verb} {total} runs ({rules[AGE]} by age, {rules[COUNT]} beyond the count)"
            )
        self.stdout.write(
            f"{verb} {report.total} runs of {len(per_task)} tasks and {report.notification_events} notification events"
        )
