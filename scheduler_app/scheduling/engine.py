"""APScheduler parts adapted to our rules: a job store, an executor and a guarded scheduler.

- TaskJobStore (django-apscheduler's DjangoJobStore, so the web process sees next run times):
  a job that cannot be unpickled is reported and rebuilt from its task, never silently deleted
  (the parent class deletes it); and the write-back of fired jobs is batched into one transaction
  per scheduling round instead of one per job, so fifty jobs due in the same second all start on
  time. Every read flushes first, so no job is ever fired twice from stale state; if the process
  dies between firing and flushing, the unique (task, scheduled_for) key absorbs the repeat.
- OccurrenceExecutor: instead of running the job function, hands (task id, run times) to the
  manager, which applies misfire grace, catch-up, overlap policies and records skipped runs.
- GuardedBackgroundScheduler: an exception in a scheduling round (a database outage, say) is
  logged and the round retried, instead of silently killing APScheduler's thread.
"""

from __future__ import annotations

import logging
import pickle
import threading
from collections.abc import Callable
from datetime import datetime

from apscheduler.executors.base import BaseExecutor
from apscheduler.jobstores.base import BaseJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from django.db import close_old_connections, connections, transaction
from django_apscheduler.jobstores import DjangoJobStore
from django_apscheduler.models import DjangoJob

logger = logging.getLogger("scheduler_app.scheduler")

# APScheduler stores a callable reference with each persistent job; ours names the function below.
JOB_FUNC = "scheduler_app.scheduling.engine:scheduled_task_job"


def scheduled_task_job(task_id: int, signature: str) -> None:
    """The callable APScheduler records for a task's job.

    OccurrenceExecutor hands due run times to the manager instead of calling this, so reaching it
    means a job was given to another executor by mistake.
    """
    raise RuntimeError(f"task {task_id}: scheduled jobs run through OccurrenceExecutor only")


class TaskJobStore(DjangoJobStore):
    def __init__(self, on_broken_job: Callable[[str, Exception], None] | None = None) -> None:
        super().__init__()
        self._on_broken_job = on_broken_job
        self._pending: dict[str, object] = {}
        self._pending_lock = threading.Lock()

    def start(self, scheduler, alias) -> None:
        # Skip DjangoResultStoreMixin.start: its listeners write a DjangoJobExecution row for every
        # fire, in the scheduling thread. Our runs are TaskExecution rows, written off that thread.
        BaseJobStore.start(self, scheduler, alias)

    def update_job(self, job) -> None:
        with self._pending_lock:
            self._pending[job.id] = job

    def flush(self) -> None:
        """Write fired jobs back in one transaction; kept for the next round if the database fails."""
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            with transaction.atomic():
                for job_id, job in pending.items():
                    DjangoJob.objects.filter(id=job_id).update(
                        next_run_time=job.next_run_time,
                        job_state=pickle.dumps(job.__getstate__(), self.pickle_protocol),
                    )
        except Exception:
            with self._pending_lock:
                self._pending = {**pending, **self._pending}
            raise

    def lookup_job(self, job_id: str):
        self.flush()
        return super().lookup_job(job_id)

    def get_due_jobs(self, now):
        self.flush()
        return super().get_due_jobs(now)

    def get_next_run_time(self):
        self.flush()
        return super().get_next_run_time()

    def get_all_jobs(self):
        self.flush()
        return super().get_all_jobs()

    def remove_job(self, job_id: str) -> None:
        with self._pending_lock:
            self._pending.pop(job_id, None)
        super().remove_job(job_id)

    def _get_jobs(self, **filters):
        jobs = []
        for job_id, job_state in DjangoJob.objects.filter(**filters).values_list("id", "job_state"):
            try:
                jobs.append(self._reconstitute_job(job_state))
            except Exception as error:
                logger.error("job %s cannot be loaded (%s); it is parked until rebuilt from its task", job_id, error)
                # Parked, not deleted: no next run time, so it is neither due nor a busy wake-up.
                DjangoJob.objects.filter(id=job_id).update(next_run_time=None)
                if self._on_broken_job:
                    self._on_broken_job(job_id, error)
        return jobs


def reuse_connections(max_age: int) -> None:
    """Keep each thread's database connection for `max_age` seconds (health-checked before reuse).

    Django's default (0) opens a connection per unit of work, which costs more than a short run
    itself. Dead connections (a restart, wait_timeout) are caught by the health check and by
    close_old_connections() around every job and loop turn.
    """
    for alias in connections:
        connections.settings[alias]["CONN_MAX_AGE"] = max_age
        connections.settings[alias]["CONN_HEALTH_CHECKS"] = True


class OccurrenceExecutor(BaseExecutor):
    """Hands due run times to a callback; never runs job functions itself."""

    def __init__(self, on_due: Callable[[object, list[datetime]], None]) -> None:
        super().__init__()
        self._on_due = on_due

    def submit_job(self, job, run_times) -> None:
        self._on_due(job, list(run_times))

    def _do_submit_job(self, job, run_times) -> None:  # pragma: no cover - submit_job is overridden
        raise NotImplementedError


class GuardedBackgroundScheduler(BackgroundScheduler):
    """A BackgroundScheduler whose scheduling thread survives errors in a round."""

    retry_seconds = 1.0

    def _process_jobs(self):
        # Idle rounds can outlast the server's wait_timeout; a dead connection is replaced here,
        # before the job store uses it, instead of failing the round.
        close_old_connections()
        try:
            return super()._process_jobs()
        except Exception:
            logger.exception("scheduling round failed; retrying in %.0f s", self.retry_seconds)
            close_old_connections()
            return self.retry_seconds
