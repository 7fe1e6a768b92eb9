"""The preview (GET tasks/{id}/next-runs/, POST schedules/preview/): the next runs in the task's zone
and the viewer's, each run a DST change, a holiday, a blackout or jitter moved marked and explained,
and the occurrences removed listed with why; the answer's old fields unchanged. Task fields for the
calendar rule, and pausing until a time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from http import HTTPStatus

import pytest
import time_machine
from django.urls import reverse

from scheduler_app.models import ScheduledTask
from scheduler_app.occurrences import jitter_offset
from scheduler_app.triggers import forget_calendar_snapshots
from tests.factories import BlackoutWindowFactory, CalendarFactory, ScheduledTaskFactory

pytestmark = pytest.mark.django_db

SPRING_FESTIVAL = [date(2024, 2, 9), *(date(2024, 2, day) for day in range(12, 17))]


@pytest.fixture(autouse=True)
def fresh_cache():
    forget_calendar_snapshots()


@pytest.fixture
def sse():
    days = [(day, "closed", "Spring Festival") for day in SPRING_FESTIVAL]
    return CalendarFactory(name="SSE", weekdays="1-5", known_until=date(2024, 6, 30), days=days)


def next_runs(client, task, **params):
    response = client.get(reverse("api:task-next-runs", kwargs={"pk": task.pk}), params)
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()


def preview(client, **payload):
    return client.post(reverse("api:schedule-preview"), payload, format="json")


def cron_task(cron: str, zone: str = "Asia/Shanghai", **fields) -> ScheduledTask:
    return ScheduledTaskFactory(interval_seconds=None, cron_expression=cron, timezone=zone, **fields)


@time_machine.travel(datetime(2024, 2, 7, tzinfo=UTC), tick=False)
def test_trading_days_in_both_zones_with_the_spring_festival_removed(user_client, sse, settings):
    settings.TIME_ZONE = "Europe/London"  # the viewer's (the request's active timezone)
    task = cron_task("30 16 * * *", calendar=sse)
    body = next_runs(user_client, task, count=4)
    assert body["description"] == "At 16:30, only on open days of SSE"
    assert body["timezone"] == "Asia/Shanghai"
    assert body["viewer_timezone"] == "Europe/London"
    assert body["next_runs"] == [
        "2024-02-07T16:30:00+08:00",
        "2024-02-08T16:30:00+08:00",
        "2024-02-19T16:30:00+08:00",
        "2024-02-20T16:30:00+08:00",
    ]
    first = body["runs"][0]
    assert first == {
        "at": "2024-02-07T16:30:00+08:00",
        "at_viewer": "2024-02-07T08:30:00+00:00",
        "planned": "2024-02-07T16:30:00+08:00",
        "marks": [],
        "note": "",
        "owed_for": None,
    }
    assert [(entry["planned"], entry["reason"], entry["mark"]) for entry in body["removed"]] == [
        (f"{day.isoformat()}T16:30:00+08:00", "SSE is closed: Spring Festival", "calendar") for day in SPRING_FESTIVAL
    ]  # the weekends are not listed: they are simply not trading days
    assert body["removed"][0]["planned_viewer"] == "2024-02-09T08:30:00+00:00"
    assert body["notes"] == [
        "SSE lists its days until 2024-06-30; after that its open weekdays (Monday–Friday) count alone."
    ]


@time_machine.travel(datetime(2023, 12, 30, tzinfo=UTC), tick=False)
def test_the_first_open_day_of_the_month_moved_by_a_holiday(user_client):
    calendar = CalendarFactory(name="SSE", days=[(date(2024, 1, 1), "closed", "New Year")])
    task = cron_task("0 9 * * *", calendar=calendar, calendar_rule="nth_of_month", calendar_n=1)
    body = next_runs(user_client, task, count=2)
    assert body["description"] == "At 09:00, on the 1st open day of each month of SSE"
    assert body["next_runs"] == ["2024-01-02T09:00:00+08:00", "2024-02-01T09:00:00+08:00"]
    assert body["runs"][0]["marks"] == ["holiday"]
    assert body["runs"][0]["note"] == "moved by the holidays of SSE: 2024-01-01 (New Year)"
    assert body["removed"] == []  # every other day is simply not the first open day


class TestDaylightSaving:
    @time_machine.travel(datetime(2024, 3, 9, 12, tzinfo=UTC), tick=False)
    def test_an_owed_run_is_marked(self, user_client):
        body = next_runs(user_client, cron_task("30 2 * * *", "America/New_York"), count=2)
        owed = body["runs"][0]
        assert owed["at"] == "2024-03-10T03:00:00-04:00"
        assert owed["marks"] == ["dst_owed"]
        assert owed["note"] == "moved: owed for 02:30, skipped by the daylight-saving jump"
        assert owed["owed_for"] == "2024-03-10T02:30"
        assert body["runs"][1]["marks"] == []

    @time_machine.travel(datetime(2024, 3, 10, 5, 30, tzinfo=UTC), tick=False)
    def test_a_wildcard_job_loses_the_hour_that_does_not_exist(self, user_client):
        body = next_runs(user_client, cron_task("0 * * * *", "America/New_York"), count=2)
        assert body["next_runs"] == ["2024-03-10T01:00:00-05:00", "2024-03-10T03:00:00-04:00"]
        assert [(entry["mark"], entry["reason"]) for entry in body["removed"]] == [
            ("dst_gap", "02:00 does not exist on that day (the daylight-saving jump): no run")
        ]

    @time_machine.travel(datetime(2024, 11, 3, 4, tzinfo=UTC), tick=False)
    def test_a_fixed_time_job_runs_once_in_the_repeated_hour(self, user_client):
        body = next_runs(user_client, cron_task("30 1 * * *", "America/New_York"), count=1)
        assert body["runs"][0]["at"] == "2024-11-03T01:30:00-04:00"
        assert body["runs"][0]["marks"] == ["dst_first_pass"]
        assert "not again in the second" in body["runs"][0]["note"]


class TestBlackouts:
    @time_machine.travel(datetime(2024, 2, 7, 2, 50, tzinfo=UTC), tick=False)  # 10:50 in Shanghai
    def test_deferred_and_covered(self, user_client, sse):
        task = cron_task("*/20 11-12 * * *", calendar=sse)
        BlackoutWindowFactory(
            name="Lunch", task=task, action="defer", from_time=time(11, 30), until_time=time(13), calendar=sse
        )
        body = next_runs(user_client, task, count=3)
        assert body["next_runs"] == [
            "2024-02-07T11:00:00+08:00",
            "2024-02-07T11:20:00+08:00",
            "2024-02-07T13:00:00+08:00",
        ]
        deferred = body["runs"][2]
        assert deferred["planned"] == "2024-02-07T11:40:00+08:00"
        assert deferred["marks"] == ["deferred"]
        assert deferred["note"].startswith("moved: deferred from 11:40 to the end of the blackout window “Lunch”")
        # Until the last listed run (13:00) no later occurrence is due: nothing is covered yet.
        assert body["removed"] == []
        longer = next_runs(user_client, task, count=4)
        assert longer["next_runs"][3] == "2024-02-08T11:00:00+08:00"
        assert [(entry["planned"], entry["mark"]) for entry in longer["removed"]] == [
            ("2024-02-07T12:00:00+08:00", "covered"),
            ("2024-02-07T12:20:00+08:00", "covered"),
            ("2024-02-07T12:40:00+08:00", "covered"),
        ]

    @time_machine.travel(datetime(2024, 2, 7, 2, 50, tzinfo=UTC), tick=False)
    def test_skipped_by_a_global_window(self, user_client, sse):
        task = cron_task("0 11-13 * * *", calendar=sse)
        BlackoutWindowFactory(name="Lunch", action="skip", from_time=time(11, 30), until_time=time(13), calendar=sse)
        body = next_runs(user_client, task, count=3)
        assert body["next_runs"] == [
            "2024-02-07T11:00:00+08:00",
            "2024-02-07T13:00:00+08:00",
            "2024-02-08T11:00:00+08:00",
        ]
        (removed,) = body["removed"]
        assert (removed["planned"], removed["mark"]) == ("2024-02-07T12:00:00+08:00", "blackout")
        assert removed["reason"].startswith("in the blackout window “Lunch” (11:30–13:00 on open days of SSE")


@time_machine.travel(datetime(2024, 2, 7, tzinfo=UTC), tick=False)
def test_jitter_moves_each_run_by_its_own_delay(user_client):
    task = cron_task("0 9 * * *", jitter_seconds=30)
    body = next_runs(user_client, task, count=2)
    assert body["description"] == "At 09:00, plus 0 to 30 s of jitter"
    for run in body["runs"]:
        planned = datetime.fromisoformat(run["planned"])
        delay = jitter_offset(task_id=task.pk, planned=planned, jitter_seconds=30)
        assert datetime.fromisoformat(run["at"]) == planned + delay
        assert run["marks"] == (["jitter"] if delay else [])


@time_machine.travel(datetime(2024, 2, 7, tzinfo=UTC), tick=False)
def test_runs_before_a_timed_pause_ends_are_removed(user_client):
    task = cron_task("0 9 * * *", paused=True, paused_until=datetime(2024, 2, 8, 12, tzinfo=UTC))
    body = next_runs(user_client, task, count=1)
    assert body["next_runs"] == ["2024-02-09T09:00:00+08:00"]
    assert [(entry["planned"], entry["mark"]) for entry in body["removed"]] == [
        ("2024-02-07T09:00:00+08:00", "paused"),
        ("2024-02-08T09:00:00+08:00", "paused"),
    ]
    assert body["notes"] == ["Paused until 2024-02-08 20:00; it resumes by itself then."]


class TestPreviewOfAnUnsavedSchedule:
    @time_machine.travel(datetime(2024, 2, 7, tzinfo=UTC), tick=False)
    def test_with_a_calendar(self, user_client, sse):
        response = preview(user_client, cron_expression="30 16 * * *", calendar="SSE", count=3)
        assert response.status_code == HTTPStatus.OK, response.content
        body = response.json()
        assert body["valid"] is True
        assert body["errors"] == {}
        assert body["description"] == "At 16:30, only on open days of SSE"
        assert body["next_runs"] == [
            "2024-02-07T16:30:00+08:00",
            "2024-02-08T16:30:00+08:00",
            "2024-02-19T16:30:00+08:00",
        ]
        assert len(body["removed"]) == len(SPRING_FESTIVAL)

    @time_machine.travel(datetime(2024, 2, 7, tzinfo=UTC), tick=False)
    def test_one_shot_validity_and_jitter(self, user_client):
        once = preview(user_client, run_at="2024-02-07T10:00:00+08:00").json()
        assert once["next_runs"] == ["2024-02-07T10:00:00+08:00"]
        assert once["description"] == "Once, at 2024-02-07 10:00:00 CST"
        assert once["notes"] == ["A one-shot task: it runs once."]
        bounded = preview(
            user_client,
            cron_expression="0 9 * * *",
            valid_from="2024-02-10T00:00:00+08:00",
            valid_until="2024-02-11T09:00:00+08:00",
            jitter_seconds=10,
            count=5,
        ).json()
        assert bounded["next_runs"] == ["2024-02-10T09:00:00+08:00", "2024-02-11T09:00:00+08:00"]
        assert "Each run starts 0 to 10 s after its time" in " ".join(bounded["notes"])

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"cron_expression": "0 9 * * *", "calendar": "Nowhere"}, "calendar"),
            ({"cron_expression": "0 9 * * *", "calendar": "SSE", "calendar_rule": "nth_of_month"}, "calendar_n"),
            (
                {"cron_expression": "0 9 * * *", "calendar": "SSE", "calendar_rule": "after_event", "calendar_n": 1},
                "event_calendar",
            ),
            ({"cron_expression": "0 9 * * *", "run_at": "2030-01-01T00:00:00Z"}, "run_at"),
            ({"run_at": "2030-01-01T00:00:00Z", "calendar": "SSE"}, "calendar"),
            (
                {
                    "cron_expression": "0 9 * * *",
                    "valid_from": "2030-01-02T00:00:00Z",
                    "valid_until": "2030-01-01T00:00:00Z",
                },
                "valid_until",
            ),
            ({"cron_expression": "0 9 * * *", "jitter_seconds": 3601}, "jitter_seconds"),
        ],
    )
    def test_bad_input_is_a_400_with_the_field(self, user_client, sse, payload, field):
        response = preview(user_client, **payload)
        assert response.status_code == HTTPStatus.BAD_REQUEST
        body = response.json()
        assert body["valid"] is False
        assert field in body["errors"], body["errors"]
        assert body["next_runs"] == []


class TestTaskFields:
    def test_a_calendar_by_name_in_and_out(self, operator_client, sse):
        payload = {
            "name": "daily bars",
            "task_type": "common_task",
            "cron_expression": "30 16 * * *",
            "calendar": "SSE",
            "config": {"task_action": "example_task"},
        }
        response = operator_client.post(reverse("api:task-list"), payload, format="json")
        assert response.status_code == HTTPStatus.CREATED, response.content
        body = response.json()
        assert (body["calendar"], body["calendar_rule"], body["event_calendar"]) == ("SSE", "open_days", None)
        assert body["schedule_description"] == "At 16:30, only on open days of SSE"
        bad = operator_client.post(
            reverse("api:task-list"), {**payload, "name": "x", "calendar": "Nowhere"}, format="json"
        )
        assert bad.status_code == HTTPStatus.BAD_REQUEST
        assert "calendar" in bad.json()
        url = reverse("api:task-detail", kwargs={"pk": body["id"]})
        patched = operator_client.patch(url, {"calendar_rule": "last_of_month", "calendar_n": 1}, format="json").json()
        assert patched["schedule_description"] == "At 16:30, on the last open day of each month of SSE"

    def test_pause_until_and_resume(self, operator_client):
        task = ScheduledTaskFactory()
        until = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
        url = reverse("api:task-pause", kwargs={"pk": task.pk})
        body = operator_client.post(url, {"until": until.isoformat()}, format="json").json()
        assert (body["paused"], datetime.fromisoformat(body["paused_until"])) == (True, until)
        assert body["schedule_status"] == "paused"
        past = operator_client.post(url, {"until": "2020-01-01T00:00:00Z"}, format="json")
        assert past.status_code == HTTPStatus.BAD_REQUEST
        assert "paused_until" in past.json()
        assert operator_client.post(url, {"until": "soon"}, format="json").status_code == HTTPStatus.BAD_REQUEST
        resumed = operator_client.post(reverse("api:task-resume", kwargs={"pk": task.pk})).json()
        assert (resumed["paused"], resumed["paused_until"]) == (False, None)
        assert operator_client.post(url).json()["paused_until"] is None  # no body: paused until resumed


def test_the_preview_from_another_instant(user_client, sse):
    task = cron_task("30 16 * * *", calendar=sse)
    body = next_runs(user_client, task, count=2, after="2024-02-08T12:00:00+08:00")
    assert body["next_runs"] == ["2024-02-08T16:30:00+08:00", "2024-02-19T16:30:00+08:00"]
    assert len(body["removed"]) == len(SPRING_FESTIVAL)
    unsaved = preview(user_client, cron_expression="30 16 * * *", calendar="SSE", count=1, after="2024-02-09T00:00:00Z")
    assert unsaved.json()["next_runs"] == ["2024-02-19T16:30:00+08:00"]
    bad = user_client.get(reverse("api:task-next-runs", kwargs={"pk": task.pk}), {"after": "soon"})
    assert bad.status_code == HTTPStatus.BAD_REQUEST
    assert "after" in bad.json()


def test_a_calendar_name_with_a_null_character_is_refused_not_looked_up(user_client):
    """PostgreSQL refuses NUL in any text it is sent; the lookup answered 500 there."""
    response = user_client.post(
        "/api/v1/scheduler/schedules/preview/",
        {"cron_expression": "0 9 * * *", "timezone": "UTC", "calendar": "S\x00E"},
        format="json",
    )
    assert response.status_code == 400
    assert "calendar" in response.json()["errors"]
