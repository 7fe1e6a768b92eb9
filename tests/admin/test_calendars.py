"""Calendars and blackout windows in the admin (written through the services), and the task form's
calendar fields, preview marks and "paused until"."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from http import HTTPStatus

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from scheduler_app.models import BlackoutWindow, Calendar, CalendarDay, ScheduledTask
from scheduler_app.triggers import forget_calendar_snapshots
from tests.admin.test_task_form import errors_of, form_data
from tests.factories import CalendarFactory, ScheduledTaskFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache():
    forget_calendar_snapshots()


def inline(rows: list[dict], initial: int = 0) -> dict[str, str]:
    data = {
        "days-TOTAL_FORMS": str(len(rows)),
        "days-INITIAL_FORMS": str(initial),
        "days-MIN_NUM_FORMS": "0",
        "days-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        data.update({f"days-{index}-{key}": value for key, value in row.items()})
    return data


def test_a_calendar_is_created_with_its_days_through_the_services(admin_client):
    data = {
        "name": "SSE",
        "description": "",
        "weekdays": "1-5",
        "known_until": "2024-06-30",
        **inline(
            [
                {"date": "2024-02-12", "kind": "closed", "closes_at": "", "note": "Spring Festival"},
                {"date": "2024-02-08", "kind": "half_day", "closes_at": "11:30", "note": ""},
            ]
        ),
    }
    response = admin_client.post(reverse("admin:scheduler_app_calendar_add"), data)
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:3000]
    calendar = Calendar.objects.get(name="SSE")
    assert calendar.revision == 2  # created, then its days: each a change the scheduler sees
    assert set(CalendarDay.objects.values_list("date", "kind", "closes_at")) == {
        (date(2024, 2, 12), "closed", None),
        (date(2024, 2, 8), "half_day", time(11, 30)),
    }
    listing = admin_client.get(reverse("admin:scheduler_app_calendar_changelist")).content.decode()
    assert "Monday–Friday" in listing
    assert "2 (1 closed)" in listing


def test_bad_days_and_weekdays_are_form_errors(admin_client):
    data = {
        "name": "Bad",
        "weekdays": "1-9",
        **inline([{"date": "2024-02-12", "kind": "open", "closes_at": "11:30", "note": ""}]),
    }
    response = admin_client.post(reverse("admin:scheduler_app_calendar_add"), data)
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "Invalid day of week field" in html
    assert "Only a half day has a closing time." in html
    assert not Calendar.objects.exists()


def test_a_published_calendar_shows_its_days_read_only(admin_client):
    calendar = CalendarFactory(name="SSE", source="marketdata.trading_calendar", days=[date(2024, 2, 12)])
    page = admin_client.get(reverse("admin:scheduler_app_calendar_change", args=[calendar.pk])).content.decode()
    assert "marketdata.trading_calendar" in page
    assert 'name="weekdays"' not in page  # the publishing app's
    assert 'name="days-0-date"' not in page


def test_a_calendar_in_use_is_not_deleted(admin_client):
    calendar = CalendarFactory(name="SSE")
    ScheduledTaskFactory(interval_seconds=None, cron_expression="0 9 * * *", calendar=calendar)
    response = admin_client.post(reverse("admin:scheduler_app_calendar_delete", args=[calendar.pk]), {"post": "yes"})
    assert Calendar.objects.filter(pk=calendar.pk).exists()
    assert "protected related objects" in response.content.decode()


def test_a_blackout_window_is_created_through_the_service(admin_client):
    calendar = CalendarFactory(name="SSE")
    data = {
        "name": "Lunch",
        "task": "",
        "action": "defer",
        "enabled": "on",
        "description": "",
        "kind": "daily",
        "timezone": "Asia/Shanghai",
        "from_time": "11:30",
        "until_time": "13:00",
        "calendar": str(calendar.pk),
        "starts_at_0": "",
        "starts_at_1": "",
        "ends_at_0": "",
        "ends_at_1": "",
    }
    response = admin_client.post(reverse("admin:scheduler_app_blackoutwindow_add"), data)
    assert response.status_code == HTTPStatus.FOUND, errors_of(response)
    window = BlackoutWindow.objects.get()
    assert (window.task, window.action, window.from_time) == (None, "defer", time(11, 30))
    listing = admin_client.get(reverse("admin:scheduler_app_blackoutwindow_changelist")).content.decode()
    assert "every task" in listing
    assert "11:30–13:00 on open days of SSE" in listing
    bad = admin_client.post(reverse("admin:scheduler_app_blackoutwindow_add"), {**data, "until_time": "11:30"})
    assert "The window ends when it starts" in bad.content.decode()


def test_the_task_form_takes_a_calendar_and_a_timed_pause(admin_client):
    calendar = CalendarFactory(name="SSE")
    until = timezone.localtime(timezone.now() + timedelta(days=1)).replace(second=0, microsecond=0)
    data = form_data(
        cron_expression="30 16 * * *",
        calendar=str(calendar.pk),
        calendar_rule="nth_of_week",
        calendar_n="1",
        paused="on",
        paused_until_0=until.strftime("%Y-%m-%d"),
        paused_until_1=until.strftime("%H:%M:%S"),
    )
    response = admin_client.post(reverse("admin:scheduler_app_scheduledtask_add"), data)
    assert response.status_code == HTTPStatus.FOUND, errors_of(response)
    task = ScheduledTask.objects.get(name="nightly")
    assert (task.calendar, task.calendar_rule, task.calendar_n, task.paused_until) == (
        calendar,
        "nth_of_week",
        1,
        until,
    )
    listing = admin_client.get(reverse("admin:scheduler_app_scheduledtask_changelist")).content.decode()
    assert f"Paused until {until:%Y-%m-%d %H:%M:%S}" in listing
    assert "At 16:30, on the 1st open day of each week of SSE" in listing


def test_the_task_form_refuses_a_rule_without_its_n_on_the_field(admin_client):
    calendar = CalendarFactory(name="SSE")
    data = form_data(calendar=str(calendar.pk), calendar_rule="nth_of_month", calendar_n="")
    response = admin_client.post(reverse("admin:scheduler_app_scheduledtask_add"), data)
    assert response.status_code == HTTPStatus.OK
    assert "calendar_n" in errors_of(response)


@time_machine.travel(datetime(2024, 2, 7, tzinfo=UTC), tick=False)
def test_the_form_preview_shows_the_removed_holidays_and_the_marks(admin_client):
    calendar = CalendarFactory(
        name="SSE",
        known_until=date(2024, 6, 30),
        days=[(date(2024, 2, 9), "closed", "Spring Festival"), (date(2024, 2, 8), "half_day", "")],
    )
    task = ScheduledTaskFactory(interval_seconds=None, cron_expression="30 16 * * *", calendar=calendar)
    html = admin_client.get(reverse("admin:scheduler_app_scheduledtask_change", args=[task.pk])).content.decode()
    assert "2024-02-08 16:30:00 +08:00 Thu" in html
    assert "a half day of SSE" in html
    assert "2024-02-09 16:30:00 +08:00 Fri — SSE is closed: Spring Festival" in html
    assert "SSE lists its days until 2024-06-30" in html
    assert f'data-task-id="{task.pk}"' in html
    config = json.loads(html.split('id="zq-task-form-config" type="application/json">')[1].split("</script>")[0])
    assert config["previewUrl"] == reverse("api:schedule-preview")


def test_a_calendar_in_use_is_not_deleted_in_bulk_either(admin_client):
    calendar = CalendarFactory(name="SSE")
    ScheduledTaskFactory(name="nightly", interval_seconds=None, cron_expression="0 9 * * *", calendar=calendar)
    changelist = reverse("admin:scheduler_app_calendar_changelist")
    response = admin_client.post(
        changelist, {"action": "delete_selected", "_selected_action": [calendar.pk], "post": "yes"}
    )
    assert Calendar.objects.filter(pk=calendar.pk).exists()
    assert "protected related objects" in response.content.decode()
    assert "nightly" in response.content.decode()
