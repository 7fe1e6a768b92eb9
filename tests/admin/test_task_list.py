"""The task list: columns, filters, query counts, row buttons and bulk actions, with their permissions."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from scheduler_app.models import ScheduledTask, SchedulerState, TaskExecution
from tests.admin.conftest import make_run
from tests.factories import ScheduledTaskFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:scheduler_app_scheduledtask_changelist"


def changelist(query: str = "") -> str:
    return reverse(CHANGELIST) + query


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def action(client, name: str, tasks, **extra):
    data = {"action": name, "_selected_action": [task.pk for task in tasks], **extra}
    return client.post(changelist(), data, follow=True)


def test_list_shows_every_column(admin_client, live_node):
    task = ScheduledTaskFactory(name="nightly", cron_expression="0 18 * * 1-5", interval_seconds=None)
    make_run(task, "success")
    make_run(task, "failed")
    running = make_run(task, "running", progress_percent=42.5, current_item="600000.SH")

    response = admin_client.get(changelist())

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "nightly" in html
    assert "Cron: 0 18 * * 1-5" in html  # the raw schedule under its description
    assert "Scheduled task" in html  # the type, under the name
    assert 'zq-badge--running"' in html  # schedule status: the latest run is running
    assert f'data-zq-progress="{running.pk}" data-zq-active="1"' in html
    assert 'data-zq-percent="42.5"' in html  # the width, applied by live.js (no style attribute under the CSP)
    assert '50.0%<br><span class="zq-small">1/2</span>' in html  # success rate: 1 success out of 2 finished runs
    assert reverse("admin:scheduler_app_taskexecution_change", args=[running.pk]) in html
    assert reverse("admin:scheduler_app_scheduledtask_dashboard") in html
    assert "zq-banner--offline" not in html


def test_schedule_descriptions_and_states(admin_client):
    ScheduledTaskFactory(name="every-5", interval_seconds=300)
    ScheduledTaskFactory(name="off", enabled=False)
    ScheduledTaskFactory(name="held", paused=True)
    ScheduledTaskFactory(name="by-hand", task_type="manual_task", interval_seconds=None)

    html = admin_client.get(changelist()).content.decode()

    assert "Every 5 minutes" in html
    assert "Manual: runs only on demand" in html
    assert "zq-badge--disabled" in html  # the state is the schedule status
    assert "zq-badge--paused" in html


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ("?schedule_status=failed", "broken-run", "good-run"),
        ("?schedule_status=success", "good-run", "broken-run"),
        ("?schedule_status=disabled", "off", "good-run"),
        ("?task_type__exact=manual_task", "by-hand", "good-run"),
        ("?enabled__exact=0", "off", "good-run"),
        ("?paused__exact=1", "held", "good-run"),
        ("?broken=yes", "bad-trigger", "good-run"),
        ("?q=good", "good-run", "broken-run"),
    ],
)
def test_filters_and_search(admin_client, query, shown, hidden):
    make_run(ScheduledTaskFactory(name="good-run"), "success")
    make_run(ScheduledTaskFactory(name="broken-run"), "failed")
    ScheduledTaskFactory(name="off", enabled=False)
    ScheduledTaskFactory(name="held", paused=True)
    ScheduledTaskFactory(name="by-hand", task_type="manual_task", interval_seconds=None)
    ScheduledTaskFactory(name="bad-trigger", schedule_error="cannot build trigger")

    response = admin_client.get(changelist(query))

    assert response.status_code == HTTPStatus.OK
    names = [task.name for task in response.context["cl"].result_list]
    assert shown in names
    assert hidden not in names


def test_ordering_by_schedule_status(admin_client):
    make_run(ScheduledTaskFactory(name="a"), "success")
    make_run(ScheduledTaskFactory(name="b"), "failed")
    index = ScheduledTaskAdminColumns.index("status_column")
    response = admin_client.get(changelist(f"?o={index}"))
    assert [task.name for task in response.context["cl"].result_list] == ["b", "a"]


ScheduledTaskAdminColumns = [
    "action_checkbox",
    "name_column",
    "schedule_column",
    "status_column",
]


def _changelist_queries(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(changelist()).status_code == HTTPStatus.OK
    return len(captured)


def test_changelist_query_count_does_not_grow_with_tasks(admin_client, live_node):
    def add(count: int) -> None:
        for _ in range(count):
            task = ScheduledTaskFactory()
            make_run(task, "success")
            make_run(task, "running", progress_percent=10)

    add(5)
    few = _changelist_queries(admin_client)
    add(45)
    many = _changelist_queries(admin_client)
    assert few == many
    assert many <= 20


def test_changelist_within_query_budget(admin_client, django_assert_max_num_queries):
    for _ in range(50):
        make_run(ScheduledTaskFactory(), "success")
    with django_assert_max_num_queries(20):
        admin_client.get(changelist())


# ---------------------------------------------------------------------------------------------- row buttons


def test_row_buttons_follow_permissions(staff_client):
    task = ScheduledTaskFactory()
    viewer = staff_client("view_scheduledtask")
    html = viewer.get(changelist()).content.decode()
    assert reverse("admin:scheduler_app_scheduledtask_run", args=[task.pk]) not in html
    assert reverse("admin:scheduler_app_scheduledtask_pause", args=[task.pk]) not in html
    assert reverse("admin:scheduler_app_scheduledtask_copy", args=[task.pk]) not in html

    runner = staff_client("view_scheduledtask", "run_scheduledtask")
    html = runner.get(changelist()).content.decode()
    assert reverse("admin:scheduler_app_scheduledtask_run", args=[task.pk]) in html
    assert reverse("admin:scheduler_app_scheduledtask_pause", args=[task.pk]) not in html

    editor = staff_client("view_scheduledtask", "change_scheduledtask", "add_scheduledtask")
    html = editor.get(changelist()).content.decode()
    assert reverse("admin:scheduler_app_scheduledtask_run", args=[task.pk]) not in html
    assert reverse("admin:scheduler_app_scheduledtask_pause", args=[task.pk]) in html
    assert reverse("admin:scheduler_app_scheduledtask_disable", args=[task.pk]) in html
    assert reverse("admin:scheduler_app_scheduledtask_copy", args=[task.pk]) in html


def test_row_buttons_follow_state(admin_client):
    running = ScheduledTaskFactory(name="busy")
    make_run(running, "running")
    paused = ScheduledTaskFactory(name="held", paused=True)
    off = ScheduledTaskFactory(name="off", enabled=False)

    html = admin_client.get(changelist()).content.decode()

    run_url = reverse("admin:scheduler_app_scheduledtask_run", args=[running.pk])
    assert f'formaction="{run_url}" class="zq-btn zq-btn--primary" data-zq-verb="run" disabled' in html
    assert reverse("admin:scheduler_app_scheduledtask_resume", args=[paused.pk]) in html
    assert reverse("admin:scheduler_app_scheduledtask_pause", args=[paused.pk]) not in html
    assert reverse("admin:scheduler_app_scheduledtask_enable", args=[off.pk]) in html
    assert reverse("admin:scheduler_app_scheduledtask_disable", args=[off.pk]) not in html


def test_run_now_queues_a_manual_run_and_links_it(admin_client, admin_user):
    task = ScheduledTaskFactory(name="nightly")

    response = admin_client.post(
        reverse("admin:scheduler_app_scheduledtask_run", args=[task.pk]), {"next": changelist()}, follow=True
    )

    execution = TaskExecution.objects.get(task=task)
    assert execution.status == TaskExecution.Status.PENDING
    assert execution.trigger == TaskExecution.Trigger.MANUAL
    assert execution.triggered_by == admin_user
    assert response.redirect_chain[-1][0] == changelist()
    [message] = messages_of(response)
    assert "nightly" in message
    assert reverse("admin:scheduler_app_taskexecution_change", args=[execution.pk]) in message
    assert f"execution #{execution.pk}" in message


def test_run_now_refused_by_overlap_policy_is_an_error_message(admin_client):
    task = ScheduledTaskFactory(name="busy", overlap_policy="skip")
    make_run(task, "running")

    response = admin_client.post(reverse("admin:scheduler_app_scheduledtask_run", args=[task.pk]), follow=True)

    assert response.status_code == HTTPStatus.OK
    assert TaskExecution.objects.filter(task=task).count() == 1
    [message] = messages_of(response)
    assert "already has an active run" in message
    assert next(iter(get_messages(response.wsgi_request))).level_tag == "error"


def test_run_now_needs_post_and_permission(staff_client):
    task = ScheduledTaskFactory()
    url = reverse("admin:scheduler_app_scheduledtask_run", args=[task.pk])
    runner = staff_client("view_scheduledtask", "run_scheduledtask")
    assert runner.get(url).status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert staff_client("view_scheduledtask", "change_scheduledtask").post(url).status_code == HTTPStatus.FORBIDDEN
    assert runner.post(reverse("admin:scheduler_app_scheduledtask_run", args=[999999])).status_code == 404
    assert runner.post(reverse("admin:scheduler_app_scheduledtask_run", args=["abc"])).status_code == 404
    assert not TaskExecution.objects.exists()
    assert runner.post(url).status_code == HTTPStatus.FOUND
    assert TaskExecution.objects.count() == 1


def test_anonymous_user_is_sent_to_login(client):
    task = ScheduledTaskFactory()
    response = client.post(reverse("admin:scheduler_app_scheduledtask_run", args=[task.pk]))
    assert response.status_code == HTTPStatus.FOUND
    assert reverse("admin:login") in response["Location"]
    assert not TaskExecution.objects.exists()


@pytest.mark.parametrize(
    ("verb", "start", "field", "expected"),
    [
        ("disable", {"enabled": True}, "enabled", False),
        ("enable", {"enabled": False}, "enabled", True),
        ("pause", {"paused": False}, "paused", True),
        ("resume", {"paused": True}, "paused", False),
    ],
)
def test_state_buttons_call_the_services(
    admin_client, django_capture_on_commit_callbacks, verb, start, field, expected
):
    task = ScheduledTaskFactory(name="t", **start)
    version = SchedulerState.objects.filter(pk=1).values_list("schedule_version", flat=True).first() or 0

    with django_capture_on_commit_callbacks(execute=True):
        url = reverse(f"admin:scheduler_app_scheduledtask_{verb}", args=[task.pk])
        response = admin_client.post(url, follow=True)

    task.refresh_from_db()
    assert getattr(task, field) is expected
    assert response.redirect_chain[-1][0] == reverse("admin:scheduler_app_scheduledtask_change", args=[task.pk])
    assert messages_of(response) == [f'Task "t" was {verb}d.']
    assert SchedulerState.objects.get(pk=1).schedule_version == version + 1


def test_state_buttons_need_change_permission(staff_client):
    task = ScheduledTaskFactory()
    url = reverse("admin:scheduler_app_scheduledtask_disable", args=[task.pk])
    assert staff_client("view_scheduledtask", "run_scheduledtask").post(url).status_code == HTTPStatus.FORBIDDEN
    assert staff_client("change_scheduledtask").get(url).status_code == HTTPStatus.METHOD_NOT_ALLOWED
    task.refresh_from_db()
    assert task.enabled


def test_disable_refused_for_a_step_of_an_enabled_workflow(admin_client, workflow):
    step = ScheduledTask.objects.get(name="step-a")

    response = admin_client.post(reverse("admin:scheduler_app_scheduledtask_disable", args=[step.pk]), follow=True)

    step.refresh_from_db()
    assert step.enabled
    [message] = messages_of(response)
    assert '"flow"' in message


def test_copy_button_creates_a_disabled_copy_and_opens_it(admin_client):
    task = ScheduledTaskFactory(name="nightly")

    response = admin_client.post(reverse("admin:scheduler_app_scheduledtask_copy", args=[task.pk]), follow=True)

    copy = ScheduledTask.objects.get(name="nightly_副本")
    assert not copy.enabled
    assert copy.job_id != task.job_id
    assert response.redirect_chain[-1][0] == reverse("admin:scheduler_app_scheduledtask_change", args=[copy.pk])
    assert "nightly_副本" in messages_of(response)[0]


def test_copy_needs_add_permission(staff_client):
    task = ScheduledTaskFactory()
    client = staff_client("view_scheduledtask", "change_scheduledtask")
    assert client.post(reverse("admin:scheduler_app_scheduledtask_copy", args=[task.pk])).status_code == 403


def test_next_parameter_must_stay_on_the_site(admin_client):
    task = ScheduledTaskFactory()
    response = admin_client.post(
        reverse("admin:scheduler_app_scheduledtask_pause", args=[task.pk]), {"next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("admin:scheduler_app_scheduledtask_change", args=[task.pk])


# ---------------------------------------------------------------------------------------------- bulk actions


def test_bulk_run_now_pluralises(admin_client):
    tasks = [ScheduledTaskFactory(), ScheduledTaskFactory()]
    response = action(admin_client, "run_tasks_now", tasks)
    assert TaskExecution.objects.filter(trigger="manual").count() == 2
    assert messages_of(response) == ["2 tasks were queued to run now; the scheduler starts them."]

    response = action(admin_client, "run_tasks_now", [ScheduledTaskFactory(overlap_policy="allow")])
    assert messages_of(response) == ["1 task was queued to run now; the scheduler starts it."]


def test_bulk_run_now_reports_refusals(admin_client):
    busy = ScheduledTaskFactory(name="busy")
    make_run(busy, "running")
    free = ScheduledTaskFactory(name="free")

    response = action(admin_client, "run_tasks_now", [busy, free])

    texts = messages_of(response)
    assert any(text.startswith('Task "busy"') and "active run" in text for text in texts)
    assert "1 task was queued to run now; the scheduler starts it." in texts
    assert TaskExecution.objects.filter(task=free).count() == 1


@pytest.mark.parametrize(
    ("name", "start", "field", "expected", "message"),
    [
        ("enable_tasks", {"enabled": False}, "enabled", True, "2 tasks were enabled."),
        ("disable_tasks", {"enabled": True}, "enabled", False, "2 tasks were disabled."),
        ("pause_tasks", {"paused": False}, "paused", True, "2 tasks were paused."),
        ("resume_tasks", {"paused": True}, "paused", False, "2 tasks were resumed."),
    ],
)
def test_bulk_state_actions(admin_client, django_capture_on_commit_callbacks, name, start, field, expected, message):
    tasks = [ScheduledTaskFactory(**start), ScheduledTaskFactory(**start)]
    version = SchedulerState.objects.filter(pk=1).values_list("schedule_version", flat=True).first() or 0

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = action(admin_client, name, tasks)

    assert all(getattr(task, field) is expected for task in ScheduledTask.objects.all())
    assert messages_of(response) == [message]
    assert len(callbacks) == 1  # one schedule version bump for the whole action
    assert SchedulerState.objects.get(pk=1).schedule_version == version + 1


def test_bulk_disable_reports_the_refused_task(admin_client, workflow):
    step = ScheduledTask.objects.get(name="step-a")
    other = ScheduledTaskFactory(name="other")

    response = action(admin_client, "disable_tasks", [step, other])

    texts = messages_of(response)
    assert "1 task was disabled." in texts
    assert any('"flow"' in text for text in texts)
    step.refresh_from_db()
    assert step.enabled


def test_bulk_copy(admin_client):
    tasks = [ScheduledTaskFactory(name="a"), ScheduledTaskFactory(name="b")]
    response = action(admin_client, "copy_tasks", tasks)
    assert set(ScheduledTask.objects.filter(enabled=False).values_list("name", flat=True)) == {"a_副本", "b_副本"}
    assert messages_of(response) == ["2 tasks were copied: a_副本, b_副本."]


def test_bulk_delete_goes_through_the_service(admin_client, workflow):
    step = ScheduledTask.objects.get(name="step-a")
    lonely = ScheduledTaskFactory(name="lonely")
    make_run(lonely, "success")

    confirm = admin_client.post(changelist(), {"action": "delete_selected", "_selected_action": [step.pk, lonely.pk]})
    assert confirm.status_code == HTTPStatus.OK
    assert b"Are you sure" in confirm.content

    response = action(admin_client, "delete_selected", [step, lonely], post="yes")

    assert ScheduledTask.objects.filter(pk=step.pk).exists()
    assert not ScheduledTask.objects.filter(pk=lonely.pk).exists()
    assert not TaskExecution.objects.filter(task_id=lonely.pk).exists()
    texts = messages_of(response)
    assert "1 task was deleted." in texts
    assert any(text.startswith('Task "step-a" was not deleted') for text in texts)


def test_actions_offered_by_permission(staff_client):
    ScheduledTaskFactory()

    def offered(client) -> set[str]:
        form = client.get(changelist()).context["action_form"]
        return {name for name, _label in form.fields["action"].choices if name}

    assert offered(staff_client("view_scheduledtask", "run_scheduledtask")) == {"run_tasks_now"}
    assert offered(staff_client("view_scheduledtask", "change_scheduledtask")) == {
        "enable_tasks",
        "disable_tasks",
        "pause_tasks",
        "resume_tasks",
    }
    assert offered(staff_client("view_scheduledtask", "add_scheduledtask")) == {"copy_tasks"}
    assert offered(staff_client("view_scheduledtask", "delete_scheduledtask")) == {"delete_selected"}


def test_bulk_action_without_permission_is_refused(staff_client):
    task = ScheduledTaskFactory()
    client = staff_client("view_scheduledtask")
    response = client.post(changelist(), {"action": "run_tasks_now", "_selected_action": [task.pk]})
    assert response.status_code in (HTTPStatus.OK, HTTPStatus.FOUND)
    assert not TaskExecution.objects.exists()
