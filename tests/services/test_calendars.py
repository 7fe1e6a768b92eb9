"""Calendar and blackout services: validation, a revision and a schedule version bump per change (none
for a write that changes nothing), refusals, and publishing for an app (scheduler_app.calendars)."""

from __future__ import annotations

from datetime import date, time

import pytest
from django.core.exceptions import ValidationError

from scheduler_app.calendars import PublishedCalendar, calendar_publish, calendar_source, calendar_sources_publish
from scheduler_app.exceptions import CalendarInUse, CalendarPublished
from scheduler_app.models import Calendar, CalendarDay, SchedulerState
from scheduler_app.services.blackouts import blackout_create, blackout_delete, blackout_update
from scheduler_app.services.calendars import (
    DaySpec,
    calendar_create,
    calendar_days_replace,
    calendar_delete,
    calendar_update,
)
from scheduler_app.services.permissions import SYSTEM
from tests.factories import BlackoutWindowFactory, CalendarFactory, ScheduledTaskFactory

pytestmark = pytest.mark.django_db

HOLIDAYS = [DaySpec(date(2024, 2, 12), note="Spring Festival"), DaySpec(date(2024, 2, 13), note="Spring Festival")]


def version() -> int:
    state = SchedulerState.objects.filter(pk=1).first()
    return state.schedule_version if state else 0


def test_create_validates_every_day_and_bumps(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        calendar = calendar_create(actor=SYSTEM, data={"name": " SSE ", "weekdays": "mon-fri"}, days=HOLIDAYS)
    assert (calendar.name, calendar.weekdays, calendar.revision) == ("SSE", "mon-fri", 1)
    assert CalendarDay.objects.filter(calendar=calendar).count() == 2
    assert version() == 1
    with pytest.raises(ValidationError) as error:
        calendar_create(actor=SYSTEM, data={"name": "bad", "weekdays": "1-8"})
    assert "weekdays" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        calendar_create(
            actor=SYSTEM,
            data={"name": "twice"},
            days=[
                DaySpec(date(2024, 1, 1)),
                DaySpec(date(2024, 1, 1)),
                DaySpec(date(2024, 1, 2), kind="open", closes_at=time(11, 30)),
            ],
        )
    messages = error.value.message_dict["days"]
    assert messages[0] == "2024-01-01 is listed more than once."
    assert messages[1].startswith("2024-01-02: Only a half day has a closing time.")
    assert not Calendar.objects.filter(name__in=["bad", "twice"]).exists()
    with pytest.raises(ValidationError) as error:
        calendar_create(actor=SYSTEM, data={"name": "SSE"})
    assert "name" in error.value.message_dict


def test_replacing_days_bumps_only_when_they_change(django_capture_on_commit_callbacks):
    calendar = CalendarFactory(name="SSE", days=[date(2024, 2, 12)])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert calendar_days_replace(actor=SYSTEM, calendar=calendar, days=HOLIDAYS)
    assert len(callbacks) == 1
    calendar.refresh_from_db()
    assert calendar.revision == 2
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert not calendar_days_replace(actor=SYSTEM, calendar=calendar, days=list(reversed(HOLIDAYS)))
    assert callbacks == []
    calendar.refresh_from_db()
    assert calendar.revision == 2


def test_update_bumps_when_something_changes():
    calendar = CalendarFactory(name="SSE")
    calendar_update(actor=SYSTEM, calendar=calendar, data={"weekdays": "1-5"})  # the same
    calendar.refresh_from_db()
    assert calendar.revision == 1
    calendar_update(actor=SYSTEM, calendar=calendar, data={"weekdays": "1-6"})
    calendar.refresh_from_db()
    assert (calendar.weekdays, calendar.revision) == ("1-6", 2)


def test_a_calendar_in_use_is_not_deleted():
    calendar = CalendarFactory(name="SSE")
    task = ScheduledTaskFactory(name="nightly", interval_seconds=None, cron_expression="0 9 * * *", calendar=calendar)
    window = BlackoutWindowFactory(name="Lunch", from_time=time(11, 30), until_time=time(13), calendar=calendar)
    with pytest.raises(CalendarInUse) as error:
        calendar_delete(actor=SYSTEM, calendar=calendar)
    assert error.value.message == 'The calendar is used by "nightly", blackout window "Lunch"; change them first.'
    task.delete()
    window.delete()
    calendar_delete(actor=SYSTEM, calendar=calendar)
    assert not Calendar.objects.exists()


def test_publishing_creates_replaces_and_refuses_what_it_does_not_own(django_capture_on_commit_callbacks):
    published = PublishedCalendar(name="SSE", weekdays="1-5", days=HOLIDAYS, known_until=date(2024, 6, 30))
    with django_capture_on_commit_callbacks(execute=True):
        assert calendar_publish(published, source="tests.source")
    calendar = Calendar.objects.get(name="SSE")
    assert (calendar.source, calendar.known_until, calendar.revision) == ("tests.source", date(2024, 6, 30), 1)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert not calendar_publish(published, source="tests.source")  # the same days: nothing changes
    assert callbacks == []
    later = PublishedCalendar(name="SSE", weekdays="1-5", days=HOLIDAYS[:1], known_until=date(2024, 12, 31))
    assert calendar_publish(later, source="tests.source")
    calendar.refresh_from_db()
    assert (calendar.known_until, calendar.revision, calendar.days.count()) == (date(2024, 12, 31), 2, 1)
    with pytest.raises(CalendarPublished):
        calendar_publish(later, source="another.source")
    with pytest.raises(CalendarPublished):
        calendar_days_replace(actor=SYSTEM, calendar=calendar, days=[])  # its days are its source's
    CalendarFactory(name="Kept by hand")
    with pytest.raises(CalendarPublished) as error:
        calendar_publish(PublishedCalendar(name="Kept by hand", weekdays="1-5"), source="tests.source")
    assert "not published by tests.source" in error.value.message


def test_registered_sources_are_published_and_refusals_reported():
    CalendarFactory(name="HAND")

    @calendar_source("tests.two_calendars")
    def two() -> list[PublishedCalendar]:
        return [PublishedCalendar(name="TEST", weekdays="1-5"), PublishedCalendar(name="HAND", weekdays="1-5")]

    try:
        report = calendar_sources_publish()
    finally:
        from scheduler_app import calendars

        calendars._sources.pop("tests.two_calendars")
    assert "TEST" in report.published
    assert [line.split(":")[0] for line in report.refused] == ["HAND"]


def test_blackout_windows_are_validated_and_bump(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        window = blackout_create(
            actor=SYSTEM, data={"name": "Lunch", "kind": "daily", "from_time": time(11, 30), "until_time": time(13)}
        )
    assert version() == 1
    for data, field in [
        ({"name": "x", "kind": "daily", "from_time": time(11, 30)}, "until_time"),
        ({"name": "x", "kind": "daily", "from_time": time(11, 30), "until_time": time(11, 30)}, "until_time"),
        ({"name": "x", "kind": "once", "from_time": time(1), "until_time": time(2)}, "starts_at"),
        ({"name": "x", "kind": "daily", "from_time": time(1), "until_time": time(2), "timezone": "Mars"}, "timezone"),
    ]:
        with pytest.raises(ValidationError) as error:
            blackout_create(actor=SYSTEM, data=data)
        assert field in error.value.message_dict
    blackout_update(actor=SYSTEM, window=window, data={"action": "defer"})
    window.refresh_from_db()
    assert window.action == "defer"
    blackout_delete(actor=SYSTEM, window=window)
    assert not type(window).objects.exists()
