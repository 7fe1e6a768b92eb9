"""APScheduler parts adapted to our rules: a job store, an executor and a guarded scheduler.

- TaskJobStore (django-apscheduler's DjangoJobStore, so the web process sees next run times):
  the leader's jobs live in memory, so a scheduling round never waits on the database; the table
  is written through for adds and removals and in batches for next run times. A job that cannot
  be unpickled is reported and rebuilt from its task, never silently deleted.
- OccurrenceExecutor: instead of running the job function, hands every due (job, run times) of a
  round to the manager in one batch; the manager applies misfire grace, catch-up and overlap
  policies, records skipped runs and writes the round's executions with one INSERT.
- GuardedBackgroundScheduler: rounds run by the database's clock (runtime.clock), not the host's,
  so a node whose clock is off neither fires early nor late; an exception in a round is logged
  and the round retried, instead of silently killing APScheduler's thread; rounds are held while
  the node may not fire (no lease).
"""

from __future__ import annotations

import logging
import pickle
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from apscheduler.executors.base import BaseExecutor
from apscheduler.job import Job
from apscheduler.jobstores.base import BaseJobStore, ConflictingIdError, JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_PAUSED, TIMEOUT_MAX
from django.db import IntegrityError, connection, connections, transaction
from django_apscheduler.jobstores import DjangoJobStore
from django_apscheduler.models import DjangoJob
from django_apscheduler.util import get_django_internal_datetime

from scheduler_app.runtime.clock import db_now

logger = logging.getLogger("scheduler_app.scheduler")

# A write-back of more distinct next run times than this goes as one bulk UPDATE instead.
WRITE_BACK_STATEMENTS = 10
# New jobs added in a batch (TaskJobStore.batched) are inserted this many rows per statement and transaction.
INSERT_CHUNK = 500
# APScheduler stores a callable reference with each persistent job; ours names the function below.
JOB_FUNC = "scheduler_app.scheduling.engine:scheduled_task_job"


def scheduled_task_job(task_id: int, signature: str) -> None:
    """The callable APScheduler records for a task's job.

    OccurrenceExecutor hands due run times to the manager instead of calling this, so reaching it
    means a job was given to another executor by mistake.
    """
    raise RuntimeError(f"task {task_id}: scheduled jobs run through OccurrenceExecutor only")


class TaskJobStore(DjangoJobStore):
    """The leader's jobs in memory, mirrored to django-apscheduler's DjangoJob table.

    A scheduling round reads and updates jobs in memory only (unpickling and rewriting every due
    job through the database made one round for a hundred due jobs take over a second). Adds and
    removals are written through at once; fired jobs' new next run times are queued and written in
    one statement per `flush()` (the manager flushes every loop turn, so the table lags by at most
    SCHEDULER_POLL_SECONDS), except for jobs the manager holds back until their occurrences are
    recorded. `load()` replaces the memory copy with the table, when a node becomes
    the leader. A job that cannot be unpickled is parked and reported, never deleted (the parent
    class deletes it). If the process dies before a flush, the next leader fires those occurrences
    again and the unique (task, scheduled_for) key absorbs the repeats.
    """

    def __init__(self, on_broken_job: Callable[[str, Exception], None] | None = None) -> None:
        super().__init__()
        self._on_broken_job = on_broken_job
        self._memory = MemoryJobStore()
        self._unflushed: dict[str, Job] = {}
        self._batch: set[str] | None = None  # ids of jobs added in the open batch, not inserted yet
        self._lock = threading.RLock()

    def start(self, scheduler, alias) -> None:
        # Skip DjangoResultStoreMixin.start: its listeners write a DjangoJobExecution row for every
        # fire, in the scheduling thread. Our runs are TaskExecution rows, written off that thread.
        BaseJobStore.start(self, scheduler, alias)
        self._memory.start(scheduler, alias)

    def load(self) -> int:
        """Replace the memory copy with the jobs in the table; returns how many were loaded."""
        jobs = self._get_jobs()
        with self._lock:
            self._memory.remove_all_jobs()
            self._unflushed.clear()
            for job in jobs:
                self._memory.add_job(job)
        return len(jobs)

    def flush(self, *, hold: Collection[str] = ()) -> int:
        """Write the queued next run times (see take_unflushed and write_back)."""
        return self.write_back(self.take_unflushed(hold=hold))

    def take_unflushed(self, *, hold: Collection[str] = ()) -> dict[str, Job]:
        """The fired jobs whose next run times are not written yet, except the ones in `hold`:
        their last occurrences are not recorded yet, and the table must not move past them (a
        leader that takes over starts from the table)."""
        with self._lock:
            taken = {job_id: job for job_id, job in self._unflushed.items() if job_id not in hold}
            for job_id in taken:
                del self._unflushed[job_id]
        return taken

    def write_back(self, jobs: dict[str, Job]) -> int:
        """Write these jobs' next run times: one UPDATE per distinct time (jobs due together move
        together, so a round usually takes one); kept for the next try if that fails.

        Only the column is written: a round changes nothing else of a job, and `load()` takes the
        next run time from the column, so a job's pickled state is written only when it changes
        (update_job)."""
        if not jobs:
            return 0
        by_time: dict[datetime | None, list[str]] = {}
        for job_id, job in jobs.items():
            by_time.setdefault(job.next_run_time, []).append(job_id)
        try:
            if len(by_time) <= WRITE_BACK_STATEMENTS:
                table = connection.ops.quote_name(DjangoJob._meta.db_table)
                column = DjangoJob._meta.get_field("next_run_time")
                with connection.cursor() as cursor:
                    for next_run_time, job_ids in by_time.items():
                        value = get_django_internal_datetime(next_run_time) if next_run_time else None
                        # Plain SQL: the ORM spends milliseconds on an IN list of hundreds of ids.
                        cursor.execute(
                            f"UPDATE {table} SET {connection.ops.quote_name(column.column)} = %s "
                            f"WHERE {connection.ops.quote_name('id')} IN ({', '.join(['%s'] * len(job_ids))})",
                            [column.get_db_prep_save(value, connection), *job_ids],
                        )
            else:
                rows = [
                    DjangoJob(
                        id=job_id,
                        next_run_time=get_django_internal_datetime(job.next_run_time) if job.next_run_time else None,
                    )
                    for job_id, job in jobs.items()
                ]
                DjangoJob.objects.bulk_update(rows, ["next_run_time"], batch_size=500)
        except Exception:
            with self._lock:
                self._unflushed = {**jobs, **self._unflushed}
            raise
        return len(jobs)

    @contextmanager
    def batched(self) -> Iterator[None]:
        """Within: new jobs go to memory at once and to the table at the end, INSERT_CHUNK rows per
        INSERT and transaction (a first start on an empty table adds a job per task: one INSERT and
        commit each took most of a minute for 10,000 tasks). Updates and removals of a job still
        waiting for its INSERT change only what will be inserted. The rows are written however the
        block ends, so the table keeps mirroring memory."""
        with self._lock:
            outer = self._batch is not None
            if not outer:
                self._batch = set()
        try:
            yield
        finally:
            if not outer:
                with self._lock:
                    pending, self._batch = self._batch, None
                self._insert(pending)

    def _insert(self, job_ids: set[str]) -> None:
        """Insert these jobs' rows as they are in memory now (a round may have moved them meanwhile)."""
        with self._lock:
            jobs = [job for job in map(self._memory.lookup_job, sorted(job_ids)) if job is not None]
            for job in jobs:
                self._unflushed.pop(job.id, None)  # the row is written whole, next run time included
            rows = [self._row(job) for job in jobs]
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[start : start + INSERT_CHUNK]
            try:
                with transaction.atomic():
                    DjangoJob.objects.bulk_create(chunk)
            except IntegrityError:
                # A row is there already (left by another node): the memory copy wins, row by row.
                for row in chunk:
                    DjangoJob.objects.update_or_create(
                        id=row.id, defaults={"next_run_time": row.next_run_time, "job_state": row.job_state}
                    )

    def _row(self, job: Job) -> DjangoJob:
        return DjangoJob(
            id=job.id,
            next_run_time=get_django_internal_datetime(job.next_run_time) if job.next_run_time else None,
            job_state=pickle.dumps(job.__getstate__(), self.pickle_protocol),
        )

    # -- reads: memory only

    def lookup_job(self, job_id: str):
        with self._lock:
            return self._memory.lookup_job(job_id)

    def get_due_jobs(self, now):
        with self._lock:
            return self._memory.get_due_jobs(now)

    def get_next_run_time(self):
        with self._lock:
            return self._memory.get_next_run_time()

    def get_all_jobs(self):
        with self._lock:
            return self._memory.get_all_jobs()

    # -- writes: memory, and the table (at once, or queued for the next flush)

    def add_job(self, job) -> None:
        with self._lock:
            known = self._memory.lookup_job(job.id) is not None
        if known:
            # The row exists (memory mirrors the table): the scheduler replaces the job with an update,
            # without a failing INSERT first.
            raise ConflictingIdError(job.id)
        with self._lock:
            if self._batch is not None:
                self._memory.add_job(job)
                self._batch.add(job.id)
                return
        super().add_job(job)  # ConflictingIdError when the row exists: the scheduler then updates
        with self._lock:
            if self._memory.lookup_job(job.id) is None:
                self._memory.add_job(job)
            else:
                self._memory.update_job(job)

    def advance(self, job) -> None:
        """A round moved the job to its next run time: memory now, the column at the next flush."""
        with self._lock:
            self._memory.update_job(job)
            self._unflushed[job.id] = job

    def update_job(self, job) -> None:
        """A job changed (rescheduled, paused, resumed): memory and the whole row, at once."""
        with self._lock:
            if self._memory.lookup_job(job.id) is None:
                self._memory.add_job(job)  # in the table (add_job's conflict) but not loaded yet
            else:
                self._memory.update_job(job)
            self._unflushed.pop(job.id, None)
            if self._batch is not None and job.id in self._batch:
                return  # inserted as it is at the end of the batch
        DjangoJob.objects.filter(id=job.id).update(
            next_run_time=get_django_internal_datetime(job.next_run_time) if job.next_run_time else None,
            job_state=pickle.dumps(job.__getstate__(), self.pickle_protocol),
        )

    def remove_job(self, job_id: str) -> None:
        with self._lock:
            self._unflushed.pop(job_id, None)
            in_memory = self._memory.lookup_job(job_id) is not None
            if in_memory:
                self._memory.remove_job(job_id)
            if self._batch is not None and job_id in self._batch:
                self._batch.discard(job_id)
                return  # never inserted
        deleted, _ = DjangoJob.objects.filter(id=job_id).delete()
        if not (in_memory or deleted):
            raise JobLookupError(job_id)

    def remove_all_jobs(self) -> None:
        with self._lock:
            self._unflushed.clear()
            self._memory.remove_all_jobs()
        super().remove_all_jobs()

    def _get_jobs(self, **filters):
        jobs = []
        rows = DjangoJob.objects.filter(**filters).values_list("id", "job_state", "next_run_time")
        for job_id, job_state, next_run_time in rows:
            try:
                job = self._reconstitute_job(job_state)
                # The column is the job's next run time: rounds write back only the column.
                job.next_run_time = next_run_time.astimezone(UTC) if next_run_time else None
                jobs.append(job)
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
    """Collects the due run times of a scheduling round and hands them over in one batch.

    Never runs job functions itself. One batch per round lets the manager record all the
    occurrences due at the same instant with one INSERT instead of one per job.
    """

    def __init__(self, on_due: Callable[[list[tuple[object, list[datetime]]]], None]) -> None:
        super().__init__()
        self._on_due = on_due
        self._round: list[tuple[object, list[datetime]]] = []

    def submit_job(self, job, run_times) -> None:
        self._round.append((job, list(run_times)))

    def end_round(self) -> None:
        due, self._round = self._round, []
        if due:
            self._on_due(due)

    def _do_submit_job(self, job, run_times) -> None:  # pragma: no cover - submit_job is overridden
        raise NotImplementedError


class GuardedBackgroundScheduler(BackgroundScheduler):
    """A BackgroundScheduler whose rounds run by the database's clock, whose scheduling thread survives
    errors in a round, whose occurrence executors get one batch per round, and which holds its rounds
    while `may_fire()` says no.

    APScheduler's own round reads the host's clock (datetime.now); ours asks `clock`. Callers that
    add or resume a job give its first run time themselves (`next_run_time`), computed by the same
    clock, for the same reason.
    """

    retry_seconds = 1.0
    # Asked before every round; while it says no, rounds are skipped and due run times stay due.
    may_fire: Callable[[], bool] | None = None
    hold_seconds = 0.1

    def __init__(self, *args, clock: Callable[[], datetime] = db_now, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock
        # Held for a whole round, hand-over included: outside it, every fired job's occurrences
        # have reached the executor's callback.
        self.round_lock = threading.RLock()

    def _process_jobs(self):
        if self.may_fire is not None and not self.may_fire():
            return self.hold_seconds
        if self.state == STATE_PAUSED:
            return None
        with self.round_lock:
            try:
                return self._round()
            except Exception:
                logger.exception("scheduling round failed; retrying in %.0f s", self.retry_seconds)
                return self.retry_seconds
            finally:
                for executor in list(self._executors.values()):
                    if isinstance(executor, OccurrenceExecutor):
                        executor.end_round()

    def _round(self) -> float | None:
        """Hand every due job's run times to its executor and move the job to its next run time;
        returns the seconds until the next job is due (None: no job)."""
        now = self.clock()
        next_wakeup: datetime | None = None
        with self._jobstores_lock:
            for store in self._jobstores.values():
                for job in store.get_due_jobs(now):
                    run_times = job._get_run_times(now)
                    if run_times:
                        self._lookup_executor(job.executor).submit_job(job, run_times)
                    following = job.trigger.get_next_fire_time(run_times[-1] if run_times else None, now)
                    # A trigger that has no more fire times (a one-shot task that fired, the end of a
                    # validity window) parks its job without a next run time instead of removing it:
                    # the job mirrors its task until the task changes or goes.
                    job._modify(next_run_time=following)
                    store.advance(job)
                due = store.get_next_run_time()
                if due and (next_wakeup is None or due < next_wakeup):
                    next_wakeup = due
        if next_wakeup is None:
            return None
        return min(max((next_wakeup - self.clock()).total_seconds(), 0), TIMEOUT_MAX)
