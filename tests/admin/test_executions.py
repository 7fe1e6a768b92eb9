"""Executions: the read-only list and page, the controls by state and permission, and the progress JSON."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from scheduler_app.models import ScheduledTask, TaskExecution
from tests.admin.conftest import make_run
from tests.factories import ScheduledTaskFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:scheduler_app_taskexecution_changelist"


def page(execution: TaskExecution) -> str:
    return reverse("admin:scheduler_app_taskexecution_change", args=[execution.pk])


def control(verb: str, execution: TaskExecution) -> str:
    return reverse(f"admin:scheduler_app_taskexecution_{verb}", args=[execution.pk])


def test_list_shows_badges_progress_and_filters(admin_client):
    task = ScheduledTaskFactory(name="nightly")
    running = make_run(task, "running", progress_percent=30)
    make_run(task, "failed")
    make_run(ScheduledTaskFactory(name="other"), "success")

    response = admin_client.get(reverse(CHANGELIST))

    html = response.content.decode()
    assert f'data-zq-status="{running.pk}"' in html
    assert f'data-zq-progress="{running.pk}" data-zq-active="1"' in html
    assert "zq-badge--failed" in html
    assert "nightly" in html
    specs = {spec.title for spec in response.context["cl"].filter_specs}
    assert {"status", "trigger", "task"} <= {str(title) for title in specs}
    assert response.context["cl"].date_hierarchy == "created_at"


@pytest.mark.parametrize(
    ("query", "expected"),
    [("?status__exact=failed", {"failed"}), ("?trigger__exact=retry", {"success"}), ("?q=other", {"running"})],
)
def test_list_filters(admin_client, query, expected):
    task = ScheduledTaskFactory(name="nightly")
    make_run(task, "failed")
    make_run(task, "success", trigger="retry")
    make_run(ScheduledTaskFactory(name="other"), "running")
    response = admin_client.get(reverse(CHANGELIST) + query)
    assert {execution.status for execution in response.context["cl"].result_list} == expected


def test_list_filter_by_task(admin_client):
    a, b = ScheduledTaskFactory(), ScheduledTaskFactory()
    make_run(a, "success")
    make_run(b, "success")
    response = admin_client.get(reverse(CHANGELIST) + f"?task__id__exact={a.pk}")
    assert [execution.task_id for execution in response.context["cl"].result_list] == [a.pk]


def test_list_query_count_does_not_grow(admin_client):
    def add(count: int) -> None:
        for _ in range(count):
            make_run(ScheduledTaskFactory(), "running", progress_percent=5)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            admin_client.get(reverse(CHANGELIST))
        return len(captured)

    add(5)
    few = queries()
    add(45)
    assert queries() == few


def test_page_shows_result_error_output_and_relations(admin_client, workflow):
    step_a = ScheduledTask.objects.get(name="step-a")
    parent = make_run(workflow, "running", result={"message": "步骤 1/2"})
    child = make_run(step_a, "failed", parent=parent, trigger="workflow", scheduled_for=None, error_message="Boom <b>")
    child.output_tail = "line 1\nline 2"
    child.result = {"success": False, "rows": [1, 2]}
    child.save()

    html = admin_client.get(page(child)).content.decode()
    assert (
        f'<pre class="zq-pre" data-zq-field="result" data-zq-execution="{child.pk}">{{\n  &quot;rows&quot;: [\n    1,'
        in html
    )
    assert (
        f'<h2 class="zq-heading">#{child.pk} <span data-zq-field="task_name" '
        f'data-zq-execution="{child.pk}">step-a</span>' in html
    )
    assert f"<title>#{child.pk} step-a |" in html  # the task's name, not its id; no status to go stale
    assert f"&rsaquo; #{child.pk} step-a\n</div>" in html  # the breadcrumb too
    assert "Boom &lt;b&gt;" in html
    assert "line 1\nline 2" in html
    assert f'<a href="{page(parent)}">#{parent.pk} flow</a>' in html
    assert "not a workflow run" in html

    html = admin_client.get(page(parent)).content.decode()
    assert f'href="{page(child)}">#{child.pk}</a>' in html  # child runs
    assert 'id="zq-run-graph"' in html
    assert "步骤 1/2" in html
    assert "scheduler_app/execution.js" in html


def test_live_state_carries_everything_the_page_shows(admin_client):
    task = ScheduledTaskFactory(name="watched")
    execution = make_run(task, "running", result={"rows": 3}, output_tail="out", terminate_requested=True)
    url = reverse("admin:scheduler_app_taskexecution_progress_one", args=[execution.pk])

    state = admin_client.get(url).json()["executions"][str(execution.pk)]

    assert state["task_name"] == "watched"
    assert state["status_label"] == "Running"
    assert state["status_note"] == "stopping…"
    assert '"rows": 3' in state["result"]
    assert state["output_tail"] == "out"
    ended = make_run(task, "terminated", terminate_requested=True)
    url = reverse("admin:scheduler_app_taskexecution_progress_one", args=[ended.pk])
    assert admin_client.get(url).json()["executions"][str(ended.pk)]["status_note"] == ""  # no longer stopping


def test_workflow_graph_data(workflow):
    from scheduler_app.admin.executions import workflow_run_graph

    a = ScheduledTask.objects.get(name="step-a")
    b = ScheduledTask.objects.get(name="step-b")
    parent = make_run(workflow, "running")
    child = make_run(a, "success", parent=parent, trigger="workflow", scheduled_for=None)

    graph = workflow_run_graph(parent)

    assert graph["edges"] == [{"source": str(a.pk), "target": str(b.pk)}]
    nodes = {node["id"]: node for node in graph["nodes"]}
    assert nodes[str(a.pk)]["status"] == "success"
    assert nodes[str(a.pk)]["execution"] == child.pk
    assert nodes[str(b.pk)]["status"] == "not_started"
    assert workflow_run_graph(child) is None


@pytest.mark.parametrize(
    ("status", "extra", "shown"),
    [
        ("pending", {}, {"terminate"}),
        ("running", {}, {"terminate", "pause"}),
        ("running", {"is_paused": True}, {"terminate", "resume"}),
        ("paused", {"is_paused": True}, {"terminate", "resume"}),
        ("failed", {}, {"resume", "rerun"}),
        ("terminated", {}, {"resume", "rerun"}),
        ("success", {}, {"rerun"}),
        ("skipped", {}, {"rerun"}),
    ],
)
def test_page_buttons_follow_state(admin_client, status, extra, shown):
    execution = make_run(ScheduledTaskFactory(), status, **extra)
    html = admin_client.get(page(execution)).content.decode()
    for verb in ("terminate", "pause", "resume", "rerun"):
        marker = f'data-zq-action="{verb}" data-zq-execution="{execution.pk}"'
        assert marker in html
        button = html[html.index(marker) : html.index(">", html.index(marker))]
        assert ("hidden" not in button) == (verb in shown), (verb, button)


def test_controls_hidden_without_run_permission(staff_client):
    execution = make_run(ScheduledTaskFactory(), "running")
    client = staff_client("view_taskexecution", "view_scheduledtask")
    assert "data-zq-action" not in client.get(page(execution)).content.decode()
    assert "data-zq-action" not in client.get(reverse(CHANGELIST)).content.decode()
    assert client.post(control("terminate", execution)).status_code == HTTPStatus.FORBIDDEN
    execution.refresh_from_db()
    assert not execution.terminate_requested


def test_terminate_pending_cancels(admin_client):
    execution = make_run(ScheduledTaskFactory(), "pending")
    response = admin_client.post(control("terminate", execution), follow=True)
    execution.refresh_from_db()
    assert execution.status == "terminated"
    assert response.redirect_chain[-1][0] == page(execution)
    assert [str(m) for m in get_messages(response.wsgi_request)] == [f"Execution #{execution.pk} was cancelled."]


def test_terminate_running_requests_stop(admin_client):
    execution = make_run(ScheduledTaskFactory(), "running")
    response = admin_client.post(control("terminate", execution), {"next": reverse(CHANGELIST)})
    execution.refresh_from_db()
    assert execution.terminate_requested
    assert execution.status == "running"
    assert response["Location"] == reverse(CHANGELIST)


def test_pause_and_resume(admin_client):
    execution = make_run(ScheduledTaskFactory(), "running")
    admin_client.post(control("pause", execution))
    execution.refresh_from_db()
    assert execution.is_paused
    admin_client.post(control("resume", execution))
    execution.refresh_from_db()
    assert not execution.is_paused


def test_resume_of_a_failed_run_queues_a_new_one(admin_client):
    execution = make_run(ScheduledTaskFactory(), "failed", current_item="600001.SH")
    response = admin_client.post(control("resume", execution))
    new = TaskExecution.objects.exclude(pk=execution.pk).get()
    assert (new.trigger, new.parent_id, new.current_item) == ("resume", execution.pk, "600001.SH")
    assert response["Location"] == page(new)


def test_rerun_queues_a_manual_run(admin_client, admin_user):
    execution = make_run(ScheduledTaskFactory(), "success")
    response = admin_client.post(control("rerun", execution), follow=True)
    new = TaskExecution.objects.exclude(pk=execution.pk).get()
    assert (new.trigger, new.status, new.triggered_by) == ("manual", "pending", admin_user)
    assert response.redirect_chain[-1][0] == page(new)


@pytest.mark.parametrize(("verb", "status"), [("pause", "success"), ("terminate", "failed"), ("rerun", "running")])
def test_control_refused_by_state_is_an_error_message(admin_client, verb, status):
    execution = make_run(ScheduledTaskFactory(), status)
    response = admin_client.post(control(verb, execution), follow=True)
    assert response.status_code == HTTPStatus.OK
    [message] = list(get_messages(response.wsgi_request))
    assert message.level_tag == "error"
    assert TaskExecution.objects.count() == 1


def test_controls_need_post(admin_client):
    execution = make_run(ScheduledTaskFactory(), "running")
    assert admin_client.get(control("terminate", execution)).status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert admin_client.post(reverse("admin:scheduler_app_taskexecution_pause", args=["x"])).status_code == 404


def test_history_is_read_only(admin_client):
    execution = make_run(ScheduledTaskFactory(), "running")
    assert admin_client.get(reverse("admin:scheduler_app_taskexecution_add")).status_code == HTTPStatus.FORBIDDEN
    response = admin_client.post(page(execution), {"status": "success"})
    assert response.status_code == HTTPStatus.FORBIDDEN
    delete = reverse("admin:scheduler_app_taskexecution_delete", args=[execution.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == HTTPStatus.FORBIDDEN  # active: terminate first
    finished = make_run(ScheduledTaskFactory(), "success")
    admin_client.post(reverse("admin:scheduler_app_taskexecution_delete", args=[finished.pk]), {"post": "yes"})
    assert not TaskExecution.objects.filter(pk=finished.pk).exists()


# ---------------------------------------------------------------------------------------------- progress JSON


def test_progress_json(admin_client, workflow):
    step = ScheduledTask.objects.get(name="step-a")
    parent = make_run(
        workflow,
        "running",
        progress_percent=50,
        current_item="b",
        processed_items=1,
        total_items=2,
        result={"message": "half"},
    )
    child = make_run(step, "success", parent=parent, trigger="workflow", scheduled_for=None, progress_percent=100)
    url = reverse("admin:scheduler_app_taskexecution_progress")

    data = admin_client.get(url, {"ids": f"{parent.pk},{child.pk},999999,abc"}).json()

    assert set(data["executions"]) == {str(parent.pk), str(child.pk)}
    state = data["executions"][str(parent.pk)]
    assert state["status"] == "running"
    assert state["is_active"]
    assert (state["progress_percent"], state["current_item"], state["processed_items"], state["total_items"]) == (
        50.0,
        "b",
        1,
        2,
    )
    assert state["message"] == "half"
    assert state["actions"] == ["terminate", "pause"]
    assert state["children"] == [
        {
            "id": child.pk,
            "task_id": step.pk,
            "task_name": "step-a",
            "trigger": "workflow",
            "status": "success",
            "status_label": "Success",
            "progress_percent": 100.0,
            "url": page(child),
        }
    ]
    one = admin_client.get(reverse("admin:scheduler_app_taskexecution_progress_one", args=[child.pk])).json()
    assert one["executions"][str(child.pk)]["actions"] == ["rerun"]
    assert admin_client.get(reverse("admin:scheduler_app_taskexecution_progress_one", args=[999999])).status_code == 404


def test_progress_json_permissions(staff_client, client):
    execution = make_run(ScheduledTaskFactory(), "running")
    url = reverse("admin:scheduler_app_taskexecution_progress") + f"?ids={execution.pk}"
    assert client.get(url).status_code == HTTPStatus.FOUND  # anonymous: to the login page
    assert staff_client("view_scheduledtask").get(url).status_code == HTTPStatus.FORBIDDEN
    viewer = staff_client("view_taskexecution")
    assert viewer.get(url).json()["executions"][str(execution.pk)]["actions"] == []


def test_progress_json_query_count(admin_client, django_assert_max_num_queries):
    ids = [make_run(ScheduledTaskFactory(), "running").pk for _ in range(20)]
    with django_assert_max_num_queries(8):
        admin_client.get(reverse("admin:scheduler_app_taskexecution_progress"), {"ids": ",".join(map(str, ids))})


def test_date_drilldown_works_without_database_time_zones(admin_client):
    execution = make_run(ScheduledTaskFactory(), "success")
    today = timezone.localtime(execution.created_at)
    url = reverse(CHANGELIST)

    html = admin_client.get(url).content.decode()
    assert f"?created_at__year={today.year}" in html

    query = f"?created_at__year={today.year}&created_at__month={today.month}"
    html = admin_client.get(url + query).content.decode()
    assert f"created_at__day={today.day}" in html

    response = admin_client.get(url + query + f"&created_at__day={today.day}")
    assert [row.pk for row in response.context["cl"].result_list] == [execution.pk]
    response = admin_client.get(url + f"?created_at__year={today.year - 1}")
    assert list(response.context["cl"].result_list) == []
