"""The schedule version: how the services tell the scheduler process that tasks changed.

Every service that changes what the scheduler must see calls `schedule_touch()`, naming the tasks it
changed when it knows them. It registers one `transaction.on_commit` callback per transaction (a
loop of services inside one `atomic()` block, as the admin's bulk actions do, bumps the version
once), so the scheduler never reloads a change that was rolled back. The scheduler polls
`SchedulerState.schedule_version` (row pk=1). On PostgreSQL the bump also sends a notification
(NOTIFY on SchedulerState.CHANGES_CHANNEL, in the bump's own transaction, so it arrives only once the change is
committed) naming the changed tasks: a listening scheduler applies just those at once instead of
waiting for its next poll.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from scheduler_app.models import SchedulerState

logger = logging.getLogger(__name__)

STATE_PK = 1
# A notification naming more tasks than this says "everything" instead (payloads are bounded).
MAX_NOTIFIED_TASKS = 200
EVERYTHING = "*"


class _PendingBump:
    """The on-commit callback of one transaction's bump, collecting the tasks its touches name."""

    def __init__(self, task_ids: set[int | str]) -> None:
        self.task_ids = task_ids

    def __call__(self) -> None:
        version = schedule_version_bump(task_ids=self.task_ids)
        logger.debug("schedule version is now %s", version)


def schedule_touch(*, task_ids: Iterable[int] | None = None) -> None:
    """Bump the schedule version when the current transaction commits (at once outside one).

    `task_ids` are the tasks the change concerns (None: it may concern any, e.g. a calendar).
    """
    touched: set[int | str] = {EVERYTHING} if task_ids is None else set(task_ids)
    # Django keeps pending callbacks as (savepoint ids, func, robust); one bump per transaction is
    # enough, and it names every task touched in it. A callback registered in a savepoint that rolls
    # back is removed with its tasks, so the next touch registers again; tasks named in a savepoint
    # that rolled back may stay named, which only makes the scheduler look at them once more.
    if connection.in_atomic_block:
        for _savepoints, func, _robust in connection.run_on_commit:
            if isinstance(func, _PendingBump):
                func.task_ids |= touched
                return
    transaction.on_commit(_PendingBump(touched), robust=True)


def schedule_version_bump(*, now: datetime | None = None, task_ids: Iterable[int | str] = (EVERYTHING,)) -> int:
    """Add 1 to the schedule version now (creating the state row if missing); returns the new version.

    On PostgreSQL listening schedulers are told which tasks changed, in the same transaction."""
    now = now or timezone.now()
    with transaction.atomic():
        updated = SchedulerState.objects.filter(pk=STATE_PK).update(
            schedule_version=F("schedule_version") + 1, changed_at=now
        )
        if not updated:
            try:
                with transaction.atomic():
                    SchedulerState.objects.create(pk=STATE_PK, schedule_version=1, changed_at=now)
            except IntegrityError:
                # Another process created the row between our UPDATE and INSERT: count our change on it.
                SchedulerState.objects.filter(pk=STATE_PK).update(
                    schedule_version=F("schedule_version") + 1, changed_at=now
                )
        version = SchedulerState.objects.values_list("schedule_version", flat=True).get(pk=STATE_PK)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                payload = notification_payload(version=version, task_ids=task_ids)
                cursor.execute("SELECT pg_notify(%s, %s)", [SchedulerState.CHANGES_CHANNEL, payload])
    return version


def notification_payload(*, version: int, task_ids: Iterable[int | str]) -> str:
    """{"version": n, "tasks": [ids] | "*"}: the version this change made, and the tasks it concerns."""
    ids = set(task_ids)
    tasks = EVERYTHING if EVERYTHING in ids or len(ids) > MAX_NOTIFIED_TASKS else sorted(ids)
    return json.dumps({"version": version, "tasks": tasks})
