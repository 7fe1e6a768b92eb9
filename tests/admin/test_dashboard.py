"""The dashboard page, the scheduler banner on every scheduler page, the nodes list and the Chinese admin."""

from __future__ import annotations

import json
from datetime import timedelta
from http import HTTPStatus
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_apscheduler.models import DjangoJob

from scheduler_app.models import SchedulerNode
from tests.admin.conftest import make_run
from tests.factories import ScheduledTaskFactory

pytestmark = pytest.mark.django_db

DASHBOARD = "admin:scheduler_app_scheduledtask_dashboard"


def chart_of(html: str) -> dict:
    marker = 'id="zq-dashboard-chart" type="application/json">'
    start = html.index(marker) + len(marker)
    return json.loads(html[start : html.index("</script>", start)])


def test_dashboard_shows_stats_chart_timeline_upcoming_running_and_health(admin_client, live_node):
    task = ScheduledTaskFactory(name="nightly", cron_expression="0 18 * * *", interval_seconds=None)
    DjangoJob.objects.create(id=task.job_id, next_run_time=timezone.now() + timedelta(hours=1), job_state=b"")
    make_run(task, "success")
    make_run(task, "failed")
    running = make_run(ScheduledTaskFactory(name="busy"), "running", progress_percent=20)

    response = admin_client.get(reverse(DASHBOARD))

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert response.context["stats"]["total"] == 3
    assert response.context["success_rate_percent"] == "50.0"
    chart = chart_of(html)
    assert len(chart["labels"]) == 14
    assert [series["key"] for series in chart["series"]] == ["success", "failed", "other"]
    assert chart["series"][0]["data"][-1] == 1  # today's success
    assert "scheduler_app/vendor/chartjs/chart.umd.min.js" in html
    assert 'id="zq-timeline"' in html
    assert html.count("zq-timeline__row") == 3
    assert 'id="zq-upcoming"' in html
    assert "nightly" in html
    assert f'data-zq-progress="{running.pk}"' in html
    assert "testhost (pid 4242)" in html
    assert "zq-banner--offline" not in html


def test_dashboard_is_linked_from_the_list(admin_client):
    html = admin_client.get(reverse("admin:scheduler_app_scheduledtask_changelist")).content.decode()
    assert reverse(DASHBOARD) in html


def test_dashboard_permissions(staff_client, client):
    """The dashboard shows tasks and runs: it needs the view permission of both."""
    assert client.get(reverse(DASHBOARD)).status_code == HTTPStatus.FOUND  # to the login page
    assert staff_client("view_taskexecution").get(reverse(DASHBOARD)).status_code == HTTPStatus.FORBIDDEN
    assert staff_client("view_scheduledtask").get(reverse(DASHBOARD)).status_code == HTTPStatus.FORBIDDEN
    both = staff_client("view_scheduledtask", "view_taskexecution")
    assert both.get(reverse(DASHBOARD)).status_code == HTTPStatus.OK


def test_dashboard_shows_the_scheduler_processes_only_with_their_permission(staff_client, live_node):
    hosts = "testhost (pid 4242)"
    without = staff_client("view_scheduledtask", "view_taskexecution").get(reverse(DASHBOARD)).content.decode()
    assert hosts not in without
    assert 'id="zq-health"' in without  # online or not is still shown
    viewer = staff_client("view_scheduledtask", "view_taskexecution", "view_schedulernode")
    assert hosts in viewer.get(reverse(DASHBOARD)).content.decode()


def test_dashboard_query_count_does_not_grow(admin_client, live_node):
    def add(count: int) -> None:
        for _ in range(count):
            task = ScheduledTaskFactory()
            DjangoJob.objects.create(id=task.job_id, next_run_time=timezone.now() + timedelta(hours=1), job_state=b"")
            make_run(task, "success")
            make_run(task, "running")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(reverse(DASHBOARD)).status_code == HTTPStatus.OK
        return len(captured)

    add(3)
    few = queries()
    add(30)
    assert queries() == few


@pytest.mark.parametrize(
    "url",
    [
        reverse("admin:scheduler_app_scheduledtask_changelist"),
        reverse("admin:scheduler_app_scheduledtask_add"),
        reverse("admin:scheduler_app_taskexecution_changelist"),
        reverse(DASHBOARD),
        reverse("admin:scheduler_app_schedulernode_changelist"),
    ],
)
def test_offline_banner_on_every_scheduler_page(admin_client, url):
    response = admin_client.get(url)
    assert 'id="zq-banner-offline"' in response.content.decode()
    assert "python manage.py runscheduler" in response.content.decode()


def test_offline_banner_names_the_last_heartbeat(admin_client):
    SchedulerNode.objects.create(
        node_id="old",
        host="h",
        pid=1,
        started_at=timezone.now() - timedelta(hours=2),
        last_heartbeat=timezone.localtime().replace(year=2020, month=1, day=2, hour=3, minute=4, second=5),
    )
    html = admin_client.get(reverse(DASHBOARD)).content.decode()
    assert "The last heartbeat was seen at 2020-01-02 03:04:05." in html


def test_no_banner_with_a_live_scheduler(admin_client, live_node):
    html = admin_client.get(reverse("admin:scheduler_app_taskexecution_changelist")).content.decode()
    assert "zq-banner" not in html


def test_broken_trigger_banner_needs_the_task_view_permission(staff_client, live_node):
    ScheduledTaskFactory(name="secret-task", schedule_error="cannot build: bad timezone")
    url = reverse("admin:scheduler_app_taskexecution_changelist")
    html = staff_client("view_taskexecution").get(url).content.decode()
    assert "secret-task" not in html
    assert 'id="zq-banner-broken"' not in html
    html = staff_client("view_taskexecution", "view_scheduledtask").get(url).content.decode()
    assert 'id="zq-banner-broken"' in html


def test_broken_trigger_banner_links_the_tasks(admin_client, live_node):
    task = ScheduledTaskFactory(name="bad", schedule_error="cannot build: bad timezone")
    for index in range(11):
        ScheduledTaskFactory(name=f"bad-{index:02d}", schedule_error="boom")
    html = admin_client.get(reverse("admin:scheduler_app_taskexecution_changelist")).content.decode()
    assert 'id="zq-banner-broken"' in html
    assert reverse("admin:scheduler_app_scheduledtask_change", args=[task.pk]) in html
    assert "cannot build: bad timezone" in html
    assert "?broken=yes" in html  # more than ten: a link to all of them


def test_scheduler_nodes_page(admin_client, live_node):
    html = admin_client.get(reverse("admin:scheduler_app_schedulernode_changelist")).content.decode()
    assert "test-node" in html
    assert ">online<" in html
    assert admin_client.get(reverse("admin:scheduler_app_schedulernode_add")).status_code == HTTPStatus.FORBIDDEN


def test_chinese_admin(admin_client, live_node):
    mo = Path(settings.BASE_DIR) / "scheduler_app" / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.mo"
    assert mo.is_file()
    task = ScheduledTaskFactory(name="每日任务")
    make_run(task, "running")

    html = admin_client.get(
        reverse("admin:scheduler_app_scheduledtask_changelist"), HTTP_ACCEPT_LANGUAGE="zh-hans"
    ).content.decode()
    assert "计划任务" in html  # the model's verbose name
    assert "立即运行" in html  # the run-now button
    assert "运行中" in html  # a status badge

    html = admin_client.get(reverse(DASHBOARD), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "调度器仪表盘" in html
    assert "每日运行次数" in html or "运行次数" in html
