"""What becomes of a planned occurrence: jitter, and the blackout windows that skip or defer it. Pure.

The firing path (scheduling/firing.py) and the preview (selectors.task_next_runs) both ask
`occurrence_plan`, so the preview shows exactly what the scheduler does.

- **Jitter**: a task with `jitter_seconds = N` runs each occurrence 0 to N seconds (in whole
  milliseconds) after its planned time. The offset is a hash of the task id and the planned instant,
  so every scheduler process (a standby taking over included) computes the same one.
- **Blackout windows** (models.BlackoutWindow; a task's own and the global ones) are half-open
  intervals [start, end): a daily window is a wall-clock span in its own timezone (it may cross
  midnight, and may be limited to the open days of a calendar: the day it starts on must be open);
  a one-off window is from one instant to another. Windows are checked at the run's due time, the
  planned time plus its jitter (so jitter never pushes a run into a window):
  - a `skip` window covering it: the occurrence is recorded `skipped`, the window named as reason;
  - otherwise `defer` windows covering it: the run is due when the blackout ends, plus its jitter
    (again, so deferred runs of many tasks do not all start at once), moved on while that time is
    inside another window. A deferred run is never skipped by a window it is moved into. One run
    per blackout: a later occurrence of the task inside the same blackout is recorded `skipped` as
    covered by it (scheduling/firing.py finds it).
- **The row**: `occurrence_at` is the planned time (the occurrence's identity, unique per task) and
  `scheduled_for` the due time, so lateness (`start_time - scheduled_for`) still says how late the
  code began against when it was due, and the planned time stays on the row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _

from scheduler_app.calendar_rules import CalendarDays

SKIP = "skip"
DEFER = "defer"
DAILY = "daily"
ONCE = "once"
# Windows that touch each other one after another: beyond this many a blackout is taken as endless.
MAX_CHAINED_WINDOWS = 64
MAX_JITTER_SECONDS = 3600
_DAY = timedelta(days=1)


def jitter_offset(*, task_id: int | None, planned: datetime, jitter_seconds: int) -> timedelta:
    """The delay of one occurrence, 0..jitter_seconds seconds in whole milliseconds; the same in
    every process (blake2b of the task id and the planned instant, not Python's salted hash())."""
    if jitter_seconds <= 0 or task_id is None:
        return timedelta(0)
    key = f"{task_id}|{planned.astimezone(UTC).isoformat()}".encode()
    number = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")
    return timedelta(milliseconds=number % (jitter_seconds * 1000 + 1))


@dataclass(frozen=True)
class Blackout:
    """One blackout window as the scheduler keeps it in memory (from models.BlackoutWindow)."""

    id: int
    name: str
    action: str
    kind: str
    timezone: str = "UTC"
    from_time: time | None = None
    until_time: time | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    calendar: CalendarDays | None = None
    task_id: int | None = None  # None: a global window, for every task

    def span_at(self, instant: datetime) -> tuple[datetime, datetime] | None:
        """The [start, end) of this window that covers `instant` (UTC), or None."""
        if self.kind == ONCE:
            if self.starts_at is not None and self.ends_at is not None and self.starts_at <= instant < self.ends_at:
                return self.starts_at.astimezone(UTC), self.ends_at.astimezone(UTC)
            return None
        zone = ZoneInfo(self.timezone)
        today = instant.astimezone(zone).date()
        crosses_midnight = self.until_time <= self.from_time
        for start_day in (today, today - _DAY) if crosses_midnight else (today,):
            if self.calendar is not None and not self.calendar.is_open(start_day):
                continue
            start = datetime.combine(start_day, self.from_time, tzinfo=zone).astimezone(UTC)
            end_day = start_day + _DAY if crosses_midnight else start_day
            end = datetime.combine(end_day, self.until_time, tzinfo=zone).astimezone(UTC)
            if start <= instant < end:
                return start, end
        return None

    def describe(self) -> str:
        """ "'Lunch break' (11:30–13:00 Asia/Shanghai, on open days of SSE)"."""
        if self.kind == ONCE:
            zone = ZoneInfo(self.timezone)
            when = _("%(start)s to %(end)s") % {
                "start": self.starts_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                "end": self.ends_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            }
        else:
            when = f"{self.from_time:%H:%M}–{self.until_time:%H:%M}"
            if self.calendar is not None:
                when = _("%(times)s on open days of %(calendar)s") % {"times": when, "calendar": self.calendar.name}
        return _("blackout window “%(name)s” (%(when)s %(zone)s)") % {
            "name": self.name,
            "when": when,
            "zone": self.timezone,
        }


@dataclass(frozen=True)
class OccurrencePlan:
    """What becomes of one planned occurrence: due at `due`, or skipped with `skip_reason`."""

    planned: datetime
    due: datetime | None
    jitter: timedelta = timedelta(0)
    skip_reason: str = ""
    deferred_by: tuple[str, ...] = ()  # the windows it was moved out of, described
    # The blackout it was deferred out of, [start, end): an earlier occurrence deferred out of the
    # same one covers this one.
    blackout_start: datetime | None = None
    blackout_end: datetime | None = None

    @property
    def skipped(self) -> bool:
        return self.due is None

    @property
    def deferred(self) -> bool:
        return bool(self.deferred_by)


def _covering(blackouts: Sequence[Blackout], instant: datetime) -> list[tuple[Blackout, tuple[datetime, datetime]]]:
    found = []
    for blackout in blackouts:
        span = blackout.span_at(instant)
        if span is not None:
            found.append((blackout, span))
    return found


def occurrence_plan(
    *,
    planned: datetime,
    task_id: int | None,
    jitter_seconds: int = 0,
    blackouts: Sequence[Blackout] = (),
    valid_until: datetime | None = None,
) -> OccurrencePlan:
    """The due time of an occurrence planned at `planned`, or why it is skipped (module docstring).

    A run deferred past the task's `valid_until` is skipped: no run happens outside the validity
    window.
    """
    planned = planned.astimezone(UTC)
    jitter = jitter_offset(task_id=task_id, planned=planned, jitter_seconds=jitter_seconds)
    due = planned + jitter
    covering = _covering(blackouts, due)
    if not covering:
        return OccurrencePlan(planned=planned, due=due, jitter=jitter)
    skipping = [blackout for blackout, _span in covering if blackout.action == SKIP]
    if skipping:
        reason = _("in the %(window)s") % {"window": skipping[0].describe()}
        return OccurrencePlan(planned=planned, due=None, jitter=jitter, skip_reason=reason)
    start = min(span[0] for _blackout, span in covering)
    described: list[str] = []
    for _round in range(MAX_CHAINED_WINDOWS):
        if not covering:
            break
        for blackout, _span in covering:
            text = blackout.describe()
            if text not in described:
                described.append(text)
        end = max(span[1] for _blackout, span in covering)
        due = end + jitter
        covering = _covering(blackouts, due)
    else:
        reason = _("the blackout windows leave no gap: %(windows)s") % {"windows": "; ".join(described)}
        return OccurrencePlan(planned=planned, due=None, jitter=jitter, skip_reason=reason)
    if valid_until is not None and due > valid_until:
        reason = _("deferred by the %(window)s past the end of the task's validity window") % {"window": described[0]}
        return OccurrencePlan(planned=planned, due=None, jitter=jitter, skip_reason=reason)
    return OccurrencePlan(
        planned=planned,
        due=due,
        jitter=jitter,
        deferred_by=tuple(described),
        blackout_start=start,
        blackout_end=end,
    )


def covered_reason(*, due: datetime) -> str:
    """Why an occurrence inside a blackout that already deferred an earlier one is skipped."""
    return _("covered by the run deferred to %(due)s out of the same blackout") % {"due": due.isoformat()}
