"""The preview of a schedule: its next runs as the scheduler fires them, and what moved or removed each.

Runs come from the very trigger the scheduler builds (triggers.build_task_trigger) and go through the
same occurrence plan as the firing path (occurrences.occurrence_plan), so the preview cannot promise
what the scheduler does not do. Beside them, the plain cron expression (or interval) is walked too,
to find the occurrences something removed.

Marks on a run: `dst_owed` (owed for a wall time a spring jump skipped), `dst_first_pass` /
`dst_second_pass` (inside a repeated autumn hour), `deferred` (out of a blackout window), `jitter`,
`holiday` (the Nth or last open day, or T+n, moved by holidays, named), `half_day`,
`beyond_calendar` (after the last day the calendar's lists are known for). Marks on a removed
occurrence: `calendar` (a holiday took the day away, with every open day; one entry per day),
`blackout`, `covered` (deferred into an earlier run), `paused`, `dst_gap` (a wildcard job's wall
time that did not exist). A day that is simply not an occurrence day (a weekend of a trading
calendar, a day that is not the first open day of its month) is not listed: it is not due.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from django.utils.translation import gettext as _

from scheduler_app.calendar_rules import OPEN_DAYS, DayRule, describe_weekdays
from scheduler_app.occurrences import Blackout, occurrence_plan
from scheduler_app.schedules import build_trigger, dst_gap_skips, dst_owed_run, get_zone, parse_cron
from scheduler_app.triggers import TaskTiming, build_task_trigger, with_revisions

# The removed occurrences listed at most (a 1-second interval on a closed week is one per day anyway).
MAX_REMOVED = 50
# Steps of the plain schedule walked at most: a frequent interval inside a long blackout stops here.
MAX_STEPS = 5000


@dataclass
class Preview:
    """The answer: `runs` and `removed` entries (dicts, times aware), and general `notes`."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    removed_truncated: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def next_runs(self) -> list[datetime]:
        return [run["at"] for run in self.runs]


def _plain(timing: TaskTiming, start_date: datetime | None) -> BaseTrigger | None:
    """The cron or interval alone, anchored as the task's trigger is: what the calendar filters."""
    if timing.run_at is not None:
        return None
    anchor = timing.valid_from if timing.valid_from is not None and timing.interval_seconds else start_date
    return build_trigger(
        cron_expression=timing.cron_expression,
        interval_seconds=timing.interval_seconds,
        timezone=timing.timezone,
        start_date=anchor,
    )


def _day_start(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


class _Builder:
    def __init__(self, *, timing: TaskTiming, zone: tzinfo, viewer: tzinfo, rule: DayRule | None) -> None:
        self.timing, self.zone, self.viewer, self.rule = timing, zone, viewer, rule
        self.preview = Preview()
        self.schedule = parse_cron(timing.cron_expression) if timing.cron_expression else None

    def remove(self, planned: datetime, reason: str, mark: str) -> None:
        if len(self.preview.removed) >= MAX_REMOVED:
            self.preview.removed_truncated = True
            return
        self.preview.removed.append(
            {
                "planned": planned.astimezone(self.zone),
                "planned_viewer": planned.astimezone(self.viewer),
                "reason": reason,
                "mark": mark,
            }
        )

    def run(self, *, at: datetime, planned: datetime, marks: list[str], notes: list[str], owed_for: str | None):
        self.preview.runs.append(
            {
                "at": at.astimezone(self.zone),
                "at_viewer": at.astimezone(self.viewer),
                "planned": planned.astimezone(self.zone),
                "marks": marks,
                "note": "; ".join(notes),
                "owed_for": owed_for,
            }
        )

    def dst_marks(self, fire: datetime, marks: list[str], notes: list[str]) -> str | None:
        """The run's daylight-saving marks; returns the wall time it is owed for, if it is owed."""
        if self.schedule is None:
            return None
        owed = dst_owed_run(cron_expression=self.timing.cron_expression, timezone=self.timing.timezone, fire_time=fire)
        if owed is not None:
            marks.append("dst_owed")
            notes.append(_("moved: %(owed)s") % {"owed": owed.describe()})
            return owed.planned.isoformat(timespec="minutes")
        local = fire.astimezone(self.zone)
        wall = local.replace(tzinfo=None)
        other = self.zone.utcoffset(wall.replace(fold=1 - local.fold))
        if other != local.utcoffset():
            if local.fold == 0:
                marks.append("dst_first_pass")
                if self.schedule.wildcard:
                    notes.append(_("in the first pass of the hour the clock repeats (it runs in both)"))
                else:
                    notes.append(_("in the first pass of the hour the clock repeats: not again in the second"))
            else:
                marks.append("dst_second_pass")
                notes.append(_("in the second pass of the hour the clock repeats"))
        return None


def preview(
    *,
    timing: TaskTiming,
    count: int,
    now: datetime,
    viewer_zone: tzinfo,
    task_id: int | None = None,
    jitter_seconds: int = 0,
    blackouts: tuple[Blackout, ...] | list[Blackout] = (),
    paused_until: datetime | None = None,
    start_date: datetime | None = None,
) -> Preview:
    """The next `count` runs at or after `now` (module docstring). `start_date` anchors an interval
    (the job store's next run time of a scheduled task; default: one interval from now). Without a
    `task_id` (a schedule not saved yet) jitter is noted, not computed."""
    timing = with_revisions(timing)
    zone = get_zone(timing.timezone)
    trigger = build_task_trigger(timing, start_date=start_date or now)
    rule = timing.day_rule()
    plain = _plain(timing, start_date or now)
    builder = _Builder(timing=timing, zone=zone, viewer=viewer_zone, rule=rule)
    result = builder.preview
    previous = now if timing.interval_seconds and timing.valid_from is None and start_date is None else None
    fire = trigger.get_next_fire_time(previous, now)
    if fire is not None and fire < now:
        fire = None  # a one-shot time that has passed
    walk = plain.get_next_fire_time(previous, now) if plain is not None else None
    if walk is not None and timing.valid_from is not None and walk < timing.valid_from:
        walk = plain.get_next_fire_time(None, timing.valid_from)
    deferred_spans: list[tuple[datetime, datetime, datetime]] = []
    last = now
    steps = 0
    while fire is not None and len(result.runs) < count and steps < MAX_STEPS:
        # What the plain schedule fires before this run on days the calendar rule leaves out: a day
        # that is simply not an occurrence day says nothing, a holiday that took a day away is listed
        # (one entry per day).
        while walk is not None and walk < fire and steps < MAX_STEPS:
            steps += 1
            day = walk.astimezone(zone).date()
            if rule is not None and not rule.allows(day):
                if rule.rule == OPEN_DAYS and rule.holiday_removed(day):
                    builder.remove(walk, rule.removal_reason(day), "calendar")
                walk = plain.get_next_fire_time(None, _day_start(day + timedelta(days=1), zone))
            else:
                walk = plain.get_next_fire_time(walk, now)
        if walk is not None and walk == fire:
            walk = plain.get_next_fire_time(fire, now)
        steps += 1
        _gap_removals(builder, timing, last, fire)
        last = fire
        _plan_run(builder, fire, task_id, jitter_seconds, blackouts, paused_until, rule, deferred_spans)
        fire = trigger.get_next_fire_time(fire, now)
    _notes(result, timing, rule, fire is None, jitter_seconds, task_id, paused_until, now)
    return result


def _gap_removals(builder: _Builder, timing: TaskTiming, after: datetime, until: datetime) -> None:
    if not timing.cron_expression:
        return
    for wall in dst_gap_skips(
        cron_expression=timing.cron_expression, timezone=timing.timezone, after=after, until=until
    ):
        if builder.rule is not None and not builder.rule.allows(wall.date()):
            continue
        # The removed wall time never existed: shown at the jump it fell into.
        shown = datetime.combine(wall.date(), wall.time(), tzinfo=builder.zone)
        reason = _("%(time)s does not exist on that day (the daylight-saving jump): no run") % {
            "time": wall.strftime("%H:%M")
        }
        builder.remove(shown, reason, "dst_gap")


def _plan_run(
    builder: _Builder,
    fire: datetime,
    task_id: int | None,
    jitter_seconds: int,
    blackouts: tuple[Blackout, ...] | list[Blackout],
    paused_until: datetime | None,
    rule: DayRule | None,
    deferred_spans: list[tuple[datetime, datetime, datetime]],
) -> None:
    if paused_until is not None and fire < paused_until:
        local = paused_until.astimezone(builder.zone).strftime("%Y-%m-%d %H:%M")
        builder.remove(fire, _("the task is paused until %(time)s") % {"time": local}, "paused")
        return
    plan = occurrence_plan(
        planned=fire,
        task_id=task_id,
        jitter_seconds=jitter_seconds,
        blackouts=blackouts,
        valid_until=builder.timing.valid_until,
    )
    if plan.skipped:
        builder.remove(fire, plan.skip_reason, "blackout")
        return
    marks: list[str] = []
    notes: list[str] = []
    owed_for = builder.dst_marks(fire, marks, notes)
    if plan.deferred:
        for start, end, due in deferred_spans:
            if start <= plan.planned + plan.jitter < end:
                reason = _("covered by the run deferred to %(time)s out of the same blackout") % {
                    "time": due.astimezone(builder.zone).strftime("%Y-%m-%d %H:%M:%S")
                }
                builder.remove(fire, reason, "covered")
                return
        deferred_spans.append((plan.blackout_start, plan.blackout_end, plan.due))
        marks.append("deferred")
        notes.append(
            _("moved: deferred from %(time)s to the end of the %(window)s")
            % {"time": fire.astimezone(builder.zone).strftime("%H:%M"), "window": plan.deferred_by[0]}
        )
    if plan.jitter:
        marks.append("jitter")
        notes.append(_("%(seconds)s s of jitter") % {"seconds": f"{plan.jitter.total_seconds():.3f}"})
    if rule is not None:
        day = fire.astimezone(builder.zone).date()
        holidays = rule.holidays_passed(day)
        if holidays:
            marks.append("holiday")
            named = ", ".join(f"{holiday.isoformat()}{f' ({note})' if note else ''}" for holiday, note in holidays)
            notes.append(
                _("moved by the holidays of %(calendar)s: %(days)s") % {"calendar": rule.calendar.name, "days": named}
            )
        half = rule.calendar.half_day(day)
        if half is not None:
            marks.append("half_day")
            closes = f" {half.closes_at:%H:%M}" if half.closes_at else ""
            notes.append(
                _("a half day of %(calendar)s (closes%(closes)s)") % {"calendar": rule.calendar.name, "closes": closes}
            )
        if rule.calendar.beyond_known(day):
            marks.append("beyond_calendar")
            notes.append(
                _("after %(day)s, the last day %(calendar)s lists: only its open weekdays count")
                % {"day": rule.calendar.known_until.isoformat(), "calendar": rule.calendar.name}
            )
    builder.run(at=plan.due, planned=fire, marks=marks, notes=notes, owed_for=owed_for)


def _notes(
    result: Preview,
    timing: TaskTiming,
    rule: DayRule | None,
    ended: bool,
    jitter_seconds: int,
    task_id: int | None,
    paused_until: datetime | None,
    now: datetime,
) -> None:
    zone = get_zone(timing.timezone)
    if rule is not None and rule.calendar.known_until is not None:
        result.notes.append(
            _("%(calendar)s lists its days until %(day)s; after that its open weekdays (%(weekdays)s) count alone.")
            % {
                "calendar": rule.calendar.name,
                "day": rule.calendar.known_until.isoformat(),
                "weekdays": describe_weekdays(rule.calendar.weekdays),
            }
        )
    if timing.valid_from is not None and timing.valid_from > now:
        result.notes.append(
            _("No run before %(time)s (the validity window).")
            % {"time": timing.valid_from.astimezone(zone).strftime("%Y-%m-%d %H:%M")}
        )
    if ended:
        if timing.run_at is not None:
            result.notes.append(_("A one-shot task: it runs once."))
        elif timing.valid_until is not None:
            result.notes.append(
                _("No run after %(time)s (the validity window).")
                % {"time": timing.valid_until.astimezone(zone).strftime("%Y-%m-%d %H:%M")}
            )
        elif rule is not None:
            result.notes.append(_("No further occurrence day: %(rule)s.") % {"rule": rule.describe()})
    if jitter_seconds and task_id is None:
        result.notes.append(
            _("Each run starts 0 to %(seconds)s s after its time (jitter; the delays are known once saved).")
            % {"seconds": jitter_seconds}
        )
    if paused_until is not None and paused_until > now:
        result.notes.append(
            _("Paused until %(time)s; it resumes by itself then.")
            % {"time": paused_until.astimezone(zone).strftime("%Y-%m-%d %H:%M")}
        )
