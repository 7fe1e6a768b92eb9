"""A task's trigger (scheduler_app/triggers.py): cron or interval filtered by a calendar rule, the
validity window, one-shot tasks; small pickles; the signature; the calendar cache and its revision.
Expected instants are written out (UTC; Shanghai is UTC+8)."""

from __future__ import annotations

import pickle
from datetime import UTC, date, datetime

import pytest

from scheduler_app.models import SchedulerState
from scheduler_app.services.calendars import DaySpec, calendar_days_replace
from scheduler_app.services.permissions import SYSTEM
from scheduler_app.triggers import (
    CalendarTrigger,
    OneShotTrigger,
    TaskTiming,
    UnknownCalendar,
    ValidityTrigger,
    build_task_trigger,
    calendar_snapshot,
    fire_times,
    forget_calendar_snapshots,
)
from tests.factories import CalendarFactory

pytestmark = pytest.mark.django_db

SSE_HOLIDAYS = [
    DaySpec(date(2024, 1, 1), note="New Year"),
    DaySpec(date(2024, 2, 9), note="Spring Festival"),
    *(DaySpec(date(2024, 2, day), note="Spring Festival") for day in range(12, 17)),
]


@pytest.fixture(autouse=True)
def fresh_cache():
    forget_calendar_snapshots()
    yield
    forget_calendar_snapshots()


@pytest.fixture
def sse():
    days = [(spec.date, spec.kind, spec.note) for spec in SSE_HOLIDAYS]
    return CalendarFactory(name="SSE", weekdays="1-5", known_until=date(2024, 6, 30), days=days)


@pytest.fixture
def reports():
    days = [(day, "open") for day in (date(2024, 1, 26), date(2024, 2, 8), date(2024, 3, 16))]
    return CalendarFactory(name="Reports", weekdays="", days=days)


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


def timing(**fields) -> TaskTiming:
    return TaskTiming(**{"cron_expression": None, "interval_seconds": None, "timezone": "Asia/Shanghai", **fields})


def test_trading_days_only_skips_the_spring_festival(sse):
    times = fire_times(timing(cron_expression="30 16 * * *", calendar_id=sse.pk), count=5, now=utc(2024, 2, 7))
    assert times == [
        utc(2024, 2, 7, 8, 30),
        utc(2024, 2, 8, 8, 30),  # Friday 9 February to Sunday 18 February: closed
        utc(2024, 2, 19, 8, 30),
        utc(2024, 2, 20, 8, 30),
        utc(2024, 2, 21, 8, 30),
    ]


@pytest.mark.parametrize(
    ("rule", "n", "cron", "expected"),
    [
        ("nth_of_month", 1, "0 9 * * *", [utc(2024, 1, 2, 1), utc(2024, 2, 1, 1), utc(2024, 3, 1, 1)]),
        ("last_of_month", 1, "0 15 * * *", [utc(2024, 1, 31, 7), utc(2024, 2, 29, 7), utc(2024, 3, 29, 7)]),
        ("nth_of_week", 2, "0 9 * * *", [utc(2024, 1, 3, 1), utc(2024, 1, 9, 1), utc(2024, 1, 16, 1)]),
        ("last_of_week", 1, "0 15 * * *", [utc(2024, 2, 2, 7), utc(2024, 2, 8, 7), utc(2024, 2, 23, 7)]),
        # The cron's own day fields still apply: Mondays that are the week's first open day.
        ("nth_of_week", 1, "0 9 * * 1", [utc(2024, 1, 8, 1), utc(2024, 1, 15, 1), utc(2024, 1, 22, 1)]),
    ],
)
def test_nth_and_last_open_day(sse, rule, n, cron, expected):
    start = {"last_of_week": utc(2024, 2, 1), "nth_of_week": utc(2024, 1, 1)}.get(rule, utc(2023, 12, 31))
    got = fire_times(
        timing(cron_expression=cron, calendar_id=sse.pk, calendar_rule=rule, calendar_n=n), count=3, now=start
    )
    assert got == expected


def test_t_plus_n_after_each_report_day(sse, reports):
    spec = timing(cron_expression="0 8 * * *", calendar_id=sse.pk, calendar_rule="after_event", calendar_n=2)
    spec = TaskTiming(**{**spec.__dict__, "event_calendar_id": reports.pk})
    # Reports on Fri 26 Jan, Thu 8 Feb (before the Spring Festival), Sat 16 Mar: T+2 = Tue 30 Jan,
    # Tue 20 Feb, Tue 19 Mar; then no more report days, no more runs.
    assert fire_times(spec, count=5, now=utc(2024, 1, 1)) == [utc(2024, 1, 30), utc(2024, 2, 20), utc(2024, 3, 19)]


def test_an_interval_on_open_days_jumps_to_the_next_open_day(sse):
    spec = timing(interval_seconds=3600, calendar_id=sse.pk, valid_from=utc(2024, 2, 7, 16))  # 00:00 on 8 Feb
    times = fire_times(spec, count=3, now=utc(2024, 2, 8, 14, 30))  # 22:30 on Thursday 8 Feb
    assert times == [utc(2024, 2, 8, 15), utc(2024, 2, 18, 16), utc(2024, 2, 18, 17)]  # 23:00, then 19 Feb 00:00


def test_dst_owed_run_on_an_open_day_and_a_closed_day_in_new_york():
    daily = CalendarFactory(name="NY", weekdays="*", days=[date(2024, 3, 11)])
    spec = timing(cron_expression="30 2 * * *", timezone="America/New_York", calendar_id=daily.pk)
    # 10 March: 02:30 does not exist, owed at 03:00 EDT; 11 March is closed; 12 March at 02:30 EDT.
    assert fire_times(spec, count=2, now=utc(2024, 3, 10)) == [utc(2024, 3, 10, 7), utc(2024, 3, 12, 6, 30)]


def test_validity_window_includes_both_ends():
    spec = timing(cron_expression="0 12 * * *", valid_from=utc(2024, 2, 10, 4), valid_until=utc(2024, 2, 12, 4))
    assert fire_times(spec, count=5, now=utc(2024, 1, 1)) == [
        utc(2024, 2, 10, 4),
        utc(2024, 2, 11, 4),
        utc(2024, 2, 12, 4),
    ]
    trigger = build_task_trigger(spec)
    assert isinstance(trigger, ValidityTrigger)
    assert trigger.get_next_fire_time(utc(2024, 2, 12, 4), utc(2024, 2, 12, 4)) is None


def test_an_interval_counts_from_the_start_of_its_validity_window():
    spec = timing(interval_seconds=7200, valid_from=utc(2024, 2, 7, 1, 15))
    assert fire_times(spec, count=3, now=utc(2024, 2, 7)) == [
        utc(2024, 2, 7, 1, 15),
        utc(2024, 2, 7, 3, 15),
        utc(2024, 2, 7, 5, 15),
    ]
    assert fire_times(spec, count=1, now=utc(2024, 2, 7, 4)) == [utc(2024, 2, 7, 5, 15)]


def test_one_shot():
    spec = timing(run_at=utc(2024, 2, 7, 2, 0, 30))
    trigger = build_task_trigger(spec)
    assert isinstance(trigger, OneShotTrigger)
    assert trigger.get_next_fire_time(None, utc(2024, 2, 1)) == utc(2024, 2, 7, 2, 0, 30)
    assert trigger.get_next_fire_time(utc(2024, 2, 7, 2, 0, 30), utc(2024, 2, 7, 3)) is None
    # Asked anew after its time (a scheduler that was down), it still answers it: caught up.
    assert trigger.get_next_fire_time(None, utc(2024, 2, 8)) == utc(2024, 2, 7, 2, 0, 30)
    assert fire_times(spec, count=3, now=utc(2024, 2, 1)) == [utc(2024, 2, 7, 2, 0, 30)]
    assert fire_times(spec, count=3, now=utc(2024, 2, 8)) == []


def test_pickles_hold_ids_and_text_not_days(sse):
    spec = timing(
        cron_expression="30 16 * * *",
        calendar_id=sse.pk,
        valid_from=utc(2024, 1, 1),
        valid_until=utc(2024, 12, 31),
    )
    trigger = build_task_trigger(spec)
    data = pickle.dumps(trigger)
    assert len(data) < 1000
    assert b"Spring Festival" not in data
    assert b"2024-02-12" not in data
    copy = pickle.loads(data)
    assert isinstance(copy, ValidityTrigger)
    assert isinstance(copy.inner, CalendarTrigger)
    assert copy.inner.timing.calendar_revision == sse.revision
    now = utc(2024, 2, 8)
    assert copy.get_next_fire_time(None, now) == trigger.get_next_fire_time(None, now) == utc(2024, 2, 8, 8, 30)
    for spec in (timing(run_at=utc(2024, 2, 7)), timing(interval_seconds=60, calendar_id=sse.pk)):
        original = build_task_trigger(spec, start_date=utc(2024, 2, 7))
        restored = pickle.loads(pickle.dumps(original))
        assert restored.get_next_fire_time(None, utc(2024, 2, 7)) == original.get_next_fire_time(None, utc(2024, 2, 7))


def test_the_signature_changes_with_everything_that_moves_a_fire_time(sse, reports):
    base = timing(cron_expression="30 16 * * *")
    assert base.signature == "30 16 * * *|None|Asia/Shanghai"  # the plain form jobs already carry
    changed = [
        {"cron_expression": "31 16 * * *"},
        {"timezone": "UTC"},
        {"valid_from": utc(2024, 1, 1)},
        {"valid_until": utc(2024, 1, 1)},
        {"calendar_id": sse.pk, "calendar_revision": 1},
        {"calendar_id": sse.pk, "calendar_revision": 2},
        {"calendar_id": sse.pk, "calendar_revision": 1, "calendar_rule": "nth_of_month", "calendar_n": 1},
        {"calendar_id": sse.pk, "calendar_revision": 1, "calendar_rule": "nth_of_month", "calendar_n": 2},
        {
            "calendar_id": sse.pk,
            "calendar_revision": 1,
            "calendar_rule": "after_event",
            "calendar_n": 2,
            "event_calendar_id": reports.pk,
            "event_calendar_revision": 1,
        },
        {
            "calendar_id": sse.pk,
            "calendar_revision": 1,
            "calendar_rule": "after_event",
            "calendar_n": 2,
            "event_calendar_id": reports.pk,
            "event_calendar_revision": 2,
        },
    ]
    signatures = [base.signature] + [TaskTiming(**{**base.__dict__, **change}).signature for change in changed]
    assert len(set(signatures)) == len(signatures)
    one_shot = [timing(run_at=utc(2024, 1, 1)).signature, timing(run_at=utc(2024, 1, 2)).signature]
    assert len(set(one_shot)) == 2


def test_a_calendar_change_gives_a_new_revision_a_version_bump_and_new_days(sse, django_capture_on_commit_callbacks):
    spec = timing(cron_expression="30 16 * * *", calendar_id=sse.pk)
    extra = [*SSE_HOLIDAYS, DaySpec(date(2024, 2, 19), note="extra")]
    before = SchedulerState.objects.filter(pk=1).values_list("schedule_version", flat=True).first() or 0
    assert fire_times(spec, count=1, now=utc(2024, 2, 19))[0] == utc(2024, 2, 19, 8, 30)
    with django_capture_on_commit_callbacks(execute=True):
        assert calendar_days_replace(actor=SYSTEM, calendar=sse, days=extra)
    sse.refresh_from_db()
    assert SchedulerState.objects.get(pk=1).schedule_version == before + 1
    rebuilt = TaskTiming(**{**spec.__dict__, "calendar_revision": sse.revision})
    assert rebuilt.signature != TaskTiming(**{**spec.__dict__, "calendar_revision": sse.revision - 1}).signature
    assert fire_times(rebuilt, count=1, now=utc(2024, 2, 19))[0] == utc(2024, 2, 20, 8, 30)
    # The same days again: nothing changes, no bump.
    with django_capture_on_commit_callbacks(execute=True):
        assert not calendar_days_replace(actor=SYSTEM, calendar=sse, days=extra)
    assert SchedulerState.objects.get(pk=1).schedule_version == before + 1


def test_days_are_read_once_per_revision(sse, django_assert_num_queries):
    with django_assert_num_queries(2):  # the calendar row and its days
        calendar_snapshot(sse.pk, sse.revision)
    with django_assert_num_queries(0):
        for _ in range(3):
            calendar_snapshot(sse.pk, sse.revision)
        trigger = build_task_trigger(
            timing(cron_expression="30 16 * * *", calendar_id=sse.pk, calendar_revision=sse.revision)
        )
        assert trigger.get_next_fire_time(None, utc(2024, 2, 9)) == utc(2024, 2, 19, 8, 30)


def test_an_unknown_calendar_is_refused_when_the_trigger_is_built():
    with pytest.raises(UnknownCalendar):
        build_task_trigger(timing(cron_expression="30 16 * * *", calendar_id=9999))


def test_a_closed_list_ends_the_schedule():
    once = CalendarFactory(name="Maintenance", weekdays="", days=[(date(2024, 3, 2), "open")])
    spec = timing(cron_expression="0 2 * * *", calendar_id=once.pk)
    assert fire_times(spec, count=3, now=utc(2024, 1, 1)) == [utc(2024, 3, 1, 18)]
    assert build_task_trigger(spec).get_next_fire_time(utc(2024, 3, 1, 18), utc(2024, 3, 1, 18)) is None


@pytest.mark.parametrize(
    ("fields", "english", "chinese"),
    [
        (
            {"cron_expression": "30 16 * * *", "calendar_id": 1},
            "At 16:30, only on open days of SSE",
            "在 16:30，仅在 SSE 的开放日",
        ),
        (
            {"cron_expression": "0 9 * * *", "calendar_id": 1, "calendar_rule": "nth_of_month", "calendar_n": 1},
            "At 09:00, on the 1st open day of each month of SSE",
            "在 09:00，在 SSE 每月第 1 个开放日",
        ),
        (
            {"cron_expression": "0 12 * * *", "valid_from": utc(2024, 2, 10, 4), "valid_until": utc(2024, 3, 1, 4)},
            "At 12:00, from 2024-02-10 12:00, until 2024-03-01 12:00",
            "在 12:00，自 2024-02-10 12:00 起，至 2024-03-01 12:00",
        ),
        ({"run_at": utc(2024, 2, 7, 2)}, "Once, at 2024-02-07 10:00:00 CST", "一次，在 2024-02-07 10:00:00 CST"),
    ],
)
def test_the_schedule_in_words_in_both_languages(fields, english, chinese):
    from django.utils import translation

    from scheduler_app.triggers import describe_timing

    spec = timing(**fields)
    with translation.override("en"):
        assert describe_timing(spec, calendar_name="SSE") == english
    with translation.override("zh-hans"):
        assert describe_timing(spec, calendar_name="SSE") == chinese


def test_a_cron_that_never_meets_an_open_day_ends_instead_of_searching_forever(sse):
    import time

    spec = timing(cron_expression="0 9 * * 6", calendar_id=sse.pk)  # Saturdays, on a Monday-to-Friday calendar
    started = time.monotonic()
    assert fire_times(spec, count=1, now=utc(2024, 1, 1)) == []
    assert time.monotonic() - started < 5
