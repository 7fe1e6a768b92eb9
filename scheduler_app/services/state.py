"""The schedule version: how the services tell the scheduler process that tasks changed.

Every service that changes what the scheduler must see calls `schedule_touch()`, naming the tasks it
changed when it knows them. It registers one `transaction.on_commit` callback per transaction (a
loop of services inside one `atomic()` block, as the admin's bulk actions do, bumps the version
once), so the scheduler never reloads a change that was rolled back. The scheduler polls
`SchedulerState.schedule_version` (row pk=1). On PostgreSQL the bump also sends a notification
(NOTIFY on SCHEDULE_CHANNEL, in the bump's own transaction, so it arrives only once the change is
committed) naming the changed tasks: a listening scheduler applies just those at once instead of
waiting for its next poll.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from scheduler_app.models import SchedulerState

logger = logging.getLogger(__name__)

STATE_PK = 1
SCHEDULE_CHANNEL = "zquant_schedule"
# A notification naming more tasks than this says "everything" instead (payloads are bounded).
MAX_NOTIFIED_TASKS = 200
EVERYTHING = "*"

# The tasks changed by this thread's transaction, for the notification its commit sends.
_pending = threading.local()


def schedule_touch(*, task_ids: Iterable[int] | None = None) -> None:
    """Bump the schedule version when the current transaction commits (at once outside one).

    `task_ids` are the tasks the change concerns (None: it may concern any, e.g. a calendar).
    """
    changed = getattr(_pending, "task_ids", None)
    if changed is None:
        changed = _pending.task_ids = set()
    if task_ids is None:
        changed.add(EVERYTHING)
    else:
        changed.update(task_ids)
    # Django keeps pending callbacks as (savepoint ids, func, robust); one bump per transaction is enough,
    # and a callback registered in a savepoint that rolls back is removed, so we register again then.
    if connection.in_atomic_block and any(func is _schedule_version_bump for _s, func, _r in connection.run_on_commit):
        return
    # robust: the change itself is committed; a failed bump is healed by the scheduler's periodic resync.
    transaction.on_commit(_schedule_version_bump, robust=True)


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
                cursor.execute("SELECT pg_notify(%s, %s)", [SCHEDULE_CHANNEL, notification_payload(task_ids)])
    return version


def notification_payload(task_ids: Iterable[int | str]) -> str:
    """{"tasks": [ids] | "*"}: what a schedule notification names."""
    ids = set(task_ids)
    if EVERYTHING in ids or len(ids) > MAX_NOTIFIED_TASKS:
        return json.dumps({"tasks": EVERYTHING})
    return json.dumps({"tasks": sorted(ids)})


def _schedule_version_bump() -> None:
    changed = getattr(_pending, "task_ids", None) or {EVERYTHING}
    _pending.task_ids = set()
    version = schedule_version_bump(task_ids=changed)
    logger.debug("schedule version is now %s", version)
