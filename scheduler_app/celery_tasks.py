"""The Celery task that runs one execution on a worker (SCHEDULER_EXECUTION_BACKEND=celery).

The leader hands a `pending` row over and sends its id here (scheduling/backends.py). The worker
claims the row when it really starts it (pending → running, with this worker's host, pid and
name in `worker`), then runs it exactly like the scheduler's own threads do: the same executors,
progress, heartbeats (the process's ExecutionMonitor, which also reads the pause and terminate
flags every 0.5 s), final state and retry row. A row that is no longer pending (cancelled while
queued, or started by another delivery of the same message) is left alone: delivering a message
twice can never run the work twice.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import DatabaseError, close_old_connections

from scheduler_app.runtime import transitions
from scheduler_app.runtime.clock import db_clock
from scheduler_app.runtime.runner import default_worker
from scheduler_app.scheduling.backends import CELERY_TASK_NAME, execute_through_outages, log_finish

logger = logging.getLogger("scheduler_app.scheduler")

CLAIM_RETRIES = 10
CLOCK_SYNC_SECONDS = 60.0


@shared_task(name=CELERY_TASK_NAME, bind=True, ignore_result=True, acks_late=True)
def run_execution(self, execution_id: int) -> str:
    """Claim execution `execution_id` for this worker and run it to its final state."""
    worker = self.request.hostname or default_worker()
    close_old_connections()
    try:
        try:
            # Run times (start, heartbeats, end) are stamped by the database's clock, as the scheduler's.
            db_clock.sync_if_older(CLOCK_SYNC_SECONDS)
            claimed = transitions.execution_claim(execution_id=execution_id, worker=worker)
        except DatabaseError as error:
            # Nothing has started: try again later (the row stays handed over meanwhile).
            logger.warning("execution=#%s: claim failed (%s); retrying", execution_id, error)
            raise self.retry(
                exc=error, countdown=min(2 ** (self.request.retries or 0), 10), max_retries=CLAIM_RETRIES
            ) from error
        if not claimed:
            logger.info("execution=#%s is not pending any more (cancelled or started elsewhere): skipped", execution_id)
            return "not claimed"
        logger.info("start execution=#%s on %s", execution_id, worker)
        execution = execute_through_outages(execution_id)
        log_finish(execution)
        return execution.status if execution is not None else "not started"
    finally:
        close_old_connections()
