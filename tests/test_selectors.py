"""Selectors: one definition of "latest", the schedule status rules, stats in the database, scheduler health."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone
from django_apscheduler.models import DjangoJob

from scheduler_app.exceptions import InvalidRequest
from scheduler_app.models import ScheduledTask, SchedulerNode, SchedulerState, TaskExecution
from scheduler_app.selectors import (
    scheduler_status,
    task_get,
    task_list,
    task_next_runs,
    task_page,
    task_stats,
    workflow_steps,
    workflows_using_task,
)
from tests.factories import ScheduledTaskFactory, TaskExecutionFactory

NOW = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)  # 18:00 in Asia/Shanghai
Status = TaskExecution.Status


def run(task, status, **fields):
    return TaskExecutionFactory(task=task, status=status, **fields)


class TestLatestAndScheduleStatus:
    def test_latest_is_the_highest_id_that_is_not_skipped(self, task):
        run(task, Status.SUCCESS, start_time=NOW, progress_percent=100, current_item="done")
        older_start = run(task, Status.RUNNING, start_time=NOW - timedelta(hours=1), progress_percent=40.0)
        older_start.current_item = "000001.SZ"
        older_start.save()
        run(task, Status.SKIPPED)
        annotated = task_get(pk=task.pk)
        assert annotated.latest_execution_id == older_start.pk
        assert annotated.latest_execution_status == Status.RUNNING
        assert annotated.latest_execution_time == older_start.start_time
        assert annotated.latest_execution_progress == 40.0
        assert annotated.latest_execution_current_item == "000001.SZ"
        assert annotated.schedule_status == "running"

    @pytest.mark.parametrize(
        ("fields", "latest", "expected"),
        [
            ({"enabled": False, "paused": True}, Status.RUNNING, "disabled"),
            ({"paused": True}, Status.RUNNING, "paused"),
            ({}, Status.RUNNING, "running"),
            ({}, Status.PAUSED, "running"),
            ({}, Status.PENDING, "pending"),
            ({}, None, "pending"),
            ({}, Status.FAILED, "failed"),
            ({}, Status.TERMINATED, "failed"),
            ({}, Status.COMPLETED, "failed"),
            ({}, Status.SUCCESS, "success"),
            ({}, Status.SKIPPED, "pending"),
        ],
    )
    def test_schedule_status_rules(self, db, fields, latest, expected):
        task = ScheduledTaskFactory(**fields)
        if latest:
            run(task, latest)
        assert task_get(pk=task.pk).schedule_status == expected  # computed in Python, for the page
        assert list(task_list().filter(schedule_status=expected).values_list("pk", flat=True)) == [task.pk]  # SQL

    def test_no_execution_gives_nulls(self, task):
        annotated = task_get(pk=task.pk)
        assert annotated.latest_execution_id is None
        assert annotated.latest_execution_time is None

    def test_bad_id_is_does_not_exist(self, db):
        with pytest.raises(ScheduledTask.DoesNotExist):
            task_get(pk="abc")
        with pytest.raises(ScheduledTask.DoesNotExist):
            task_get(pk=2**80)
        assert task_page(ids=[]) == []


class TestNextRunTime:
    def test_from_the_job_store_for_schedulable_tasks_only(self, db):
        due = NOW + timedelta(minutes=5)
        active = ScheduledTaskFactory()
        paused = ScheduledTaskFactory(paused=True)
        disabled = ScheduledTaskFactory(enabled=False)
        manual = ScheduledTaskFactory(task_type="manual_task", interval_seconds=None)
        for task in (active, paused, disabled, manual):
            DjangoJob.objects.create(id=task.job_id, next_run_time=due, job_state=b"")
        no_job = ScheduledTaskFactory()
        ids = [active.pk, paused.pk, disabled.pk, manual.pk, no_job.pk]
        times = {task.pk: task.next_run_time for task in task_page(ids=ids)}
        assert times == {active.pk: due, paused.pk: None, disabled.pk: None, manual.pk: None, no_job.pk: None}


def test_task_page_costs_two_queries_whatever_the_size(db, django_assert_num_queries):
    ids = []
    for index in range(20):
        task = ScheduledTaskFactory()
        run(task, Status.SUCCESS if index % 2 else Status.FAILED)
        ids.append(task.pk)
    with django_assert_num_queries(2):
        rows = task_page(ids=list(reversed(ids)))
    assert [row.pk for row in rows] == list(reversed(ids))
    assert len(rows) == 20
    assert {row.schedule_status for row in rows} == {"success", "failed"}


class TestWorkflows:
    def test_steps_in_config_order_and_users(self, db):
        first, second = ScheduledTaskFactory(name="b"), ScheduledTaskFactory(name="a")
        config = {"tasks": [{"task_id": first.pk}, {"task_id": second.pk}, {"task_id": 999_999}]}
        flow = ScheduledTaskFactory(task_type="workflow", config=config, name="flow")
        assert [step.pk for step in workflow_steps(task=flow)] == [first.pk, second.pk]
        assert [workflow.name for workflow in workflows_using_task(task_id=second.pk)] == ["flow"]
        assert workflows_using_task(task_id=flow.pk) == []

    def test_steps_of_a_non_workflow_is_invalid(self, task):
        with pytest.raises(InvalidRequest, match="not a workflow"):
            workflow_steps(task=task)


class TestNextRuns:
    def test_cron_in_the_task_timezone(self, db):
        task = ScheduledTaskFactory(cron_expression="30 18 * * *", interval_seconds=None, timezone="Asia/Shanghai")
        answer = task_next_runs(task=task, count=2, now=NOW)
        assert [t.isoformat() for t in answer["next_runs"]] == [
            "2025-03-04T18:30:00+08:00",
            "2025-03-05T18:30:00+08:00",
        ]
        assert answer["timezone"] == "Asia/Shanghai"
        assert "18:30" in answer["description"]

    def test_interval_counts_from_the_job_store(self, db):
        task = ScheduledTaskFactory(interval_seconds=600)
        DjangoJob.objects.create(id=task.job_id, next_run_time=NOW + timedelta(seconds=90), job_state=b"")
        answer = task_next_runs(task=task, count=3, now=NOW)
        assert [t - NOW for t in answer["next_runs"]] == [timedelta(seconds=s) for s in (90, 690, 1290)]

    def test_manual_task_has_none(self, db):
        task = ScheduledTaskFactory(task_type="manual_task", interval_seconds=None)
        answer = task_next_runs(task=task, count=3, now=NOW)
        assert answer["next_runs"] == []
        assert answer["description"].startswith("Manual")


class TestStats:
    def test_counts_rate_duration_and_days(self, db, settings):
        settings.TIME_ZONE = "Asia/Shanghai"
        task, other = ScheduledTaskFactory(), ScheduledTaskFactory()
        today = NOW  # 2025-03-04 18:00 local
        yesterday_local_late = datetime(2025, 3, 3, 15, 30, tzinfo=UTC)  # 23:30 local on the 3rd
        day_before_utc_but_today_local = datetime(2025, 3, 3, 16, 30, tzinfo=UTC)  # 00:30 local on the 4th
        run(task, Status.SUCCESS, start_time=today, duration_seconds=10)
        run(task, Status.SUCCESS, start_time=yesterday_local_late, duration_seconds=20)
        run(task, Status.FAILED, start_time=day_before_utc_but_today_local, duration_seconds=30)
        run(task, Status.TERMINATED, start_time=today)
        run(task, Status.COMPLETED, start_time=today)
        run(task, Status.PAUSED, start_time=today)
        run(task, Status.RUNNING, start_time=today)
        run(task, Status.PENDING)
        run(task, Status.SKIPPED)
        run(other, Status.SUCCESS, start_time=today - timedelta(days=40))
        with timezone.override("Asia/Shanghai"):
            stats = task_stats(task=task, days=3, now=NOW)
        assert {key: stats[key] for key in ("total", "success", "failed", "running", "pending", "skipped")} == {
            "total": 9,
            "success": 2,
            "failed": 3,
            "running": 2,
            "pending": 1,
            "skipped": 1,
        }
        assert stats["success_rate"] == 0.4
        assert stats["avg_duration_seconds"] == 20.0
        assert stats["latest_execution_time"] == today
        assert stats["by_day"] == [
            {"date": date(2025, 3, 2), "success": 0, "failed": 0, "other": 0, "total": 0},
            {"date": date(2025, 3, 3), "success": 1, "failed": 0, "other": 0, "total": 1},
            {"date": date(2025, 3, 4), "success": 1, "failed": 3, "other": 2, "total": 6},
        ]
        overall = task_stats(days=60, now=NOW)
        assert overall["total"] == 10
        assert overall["success"] == 3

    def test_empty(self, db):
        stats = task_stats(days=1, now=NOW)
        assert stats["total"] == 0
        assert stats["success_rate"] == 0.0
        assert stats["avg_duration_seconds"] is None
        assert stats["latest_execution_time"] is None
        assert len(stats["by_day"]) == 1

    def test_constant_number_of_queries(self, db, django_assert_num_queries):
        task = ScheduledTaskFactory()
        for day in range(10):
            run(task, Status.SUCCESS, start_time=NOW - timedelta(days=day), duration_seconds=day)
        with django_assert_num_queries(4):  # totals and days from the day statistics, active runs, latest start
            stats = task_stats(task=task, days=30, now=NOW)
        assert sum(day["total"] for day in stats["by_day"]) == 10
        for day in range(10, 30):
            run(task, Status.FAILED, start_time=NOW - timedelta(days=day), duration_seconds=day)
        with django_assert_num_queries(4):
            stats = task_stats(task=task, days=30, now=NOW)
        assert sum(day["total"] for day in stats["by_day"]) == 30


class TestSchedulerStatus:
    def node(self, node_id, *, beat, **fields):
        return SchedulerNode.objects.create(
            node_id=node_id, host="h", pid=1, started_at=NOW - timedelta(hours=1), last_heartbeat=beat, **fields
        )

    def test_online_leader_and_standbys(self, db, settings):
        settings.SCHEDULER_HEARTBEAT_SECONDS = 5
        SchedulerState.objects.create(
            pk=1, schedule_version=7, leader="a", lease_expires_at=NOW + timedelta(seconds=10)
        )
        self.node("a", beat=NOW - timedelta(seconds=2), is_leader=True)
        self.node("b", beat=NOW - timedelta(seconds=4))
        self.node("dead", beat=NOW - timedelta(seconds=16))
        self.node("stopped", beat=NOW, stopped_at=NOW)
        DjangoJob.objects.create(id="task-x", next_run_time=NOW, job_state=b"")
        status = scheduler_status(now=NOW)
        assert status["online"] is True
        assert status["leader"]["node_id"] == "a"
        assert [node["node_id"] for node in status["standbys"]] == ["b"]
        assert status["jobs"] == 1
        assert status["version"] == 7
        assert status["last_heartbeat"] == NOW

    def test_offline_without_recent_heartbeats(self, db):
        self.node("old", beat=NOW - timedelta(minutes=5))
        status = scheduler_status(now=NOW)
        assert status["online"] is False
        assert status["leader"] is None
        assert status["version"] == 0
        assert status["last_heartbeat"] == NOW - timedelta(minutes=5)
