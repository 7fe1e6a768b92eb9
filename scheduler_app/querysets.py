"""Query vocabulary for tasks and executions: filters only, no side effects."""

from __future__ import annotations

from django.db import models


class ScheduledTaskQuerySet(models.QuerySet):
    def enabled(self) -> ScheduledTaskQuerySet:
        return self.filter(enabled=True)

    def scheduled(self) -> ScheduledTaskQuerySet:
        """Tasks that carry a schedule (everything but manual tasks)."""
        return self.exclude(task_type="manual_task")

    def schedulable(self) -> ScheduledTaskQuerySet:
        """Tasks the scheduler process keeps a job for: enabled and not manual."""
        return self.enabled().scheduled()


class TaskExecutionQuerySet(models.QuerySet):
    def active(self) -> TaskExecutionQuerySet:
        """Queued, running or paused runs."""
        return self.filter(status__in=("pending", "running", "paused"))

    def started(self) -> TaskExecutionQuerySet:
        """Runs that hold a worker: running or paused."""
        return self.filter(status__in=("running", "paused"))

    def finished(self) -> TaskExecutionQuerySet:
        return self.filter(status__in=("success", "failed", "completed", "terminated", "skipped"))
