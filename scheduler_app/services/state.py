"""The schedule version: how the services tell the scheduler process that tasks changed.

Every service that changes what the scheduler must see calls `schedule_touch()`. It registers one
`transaction.on_commit` callback per transaction (a loop of services inside one `atomic()` block,
as the admin's bulk actions do, bumps the version once), so the scheduler never reloads a change
that was rolled back. The scheduler polls `SchedulerState.schedule_version` (row pk=1).
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from scheduler_app.models import SchedulerState

logger = logging.getLogger(__name__)

STATE_PK = 1


def schedule_touch() -> None:
    """Bump the schedule version when the current transaction commits (at once outside one)."""
    # Django keeps pending callbacks as (savepoint ids, func, robust); one bump per transaction is enough,
    # and a callback registered in a savepoint that rolls back is removed, so we register again then.
    if connection.in_atomic_block and any(func is _schedule_version_bump for _s, func, _r in connection.run_on_commit):
        return
    # robust: the change itself is committed; a failed bump is healed by the scheduler's periodic resync.
    transaction.on_commit(_schedule_version_bump, robust=True)


def schedule_version_bump(*, now: datetime | None = None) -> int:
    """Add 1 to the schedule version now (creating the state row if missing); returns the new version."""
    now = now or timezone.now()
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
    return SchedulerState.objects.values_list("schedule_version", flat=True).get(pk=STATE_PK)


def _schedule_version_bump() -> None:
    version = schedule_version_bump()
    logger.debug("schedule version is now %s", version)
