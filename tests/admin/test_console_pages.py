"""The console's pages around the lists: the admin index, the app index, the process pages, the labels."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

from django.urls import reverse
from django.utils import timezone

from scheduler_app.admin.common import SCHEDULE_STATUS_LABELS
from scheduler_app.models import SchedulerNode, TaskExecution


def test_django_apschedulers_tables_are_not_in_the_admin(admin_client):
    html = admin_client.get("/admin/").content.decode()
    assert "django_apscheduler" not in html
    assert "Django jobs" not in html
    assert admin_client.get("/admin/django_apscheduler/djangojob/").status_code == HTTPStatus.NOT_FOUND


def test_the_app_index_links_the_dashboard(admin_client, client, django_user_model):
    html = admin_client.get(reverse("admin:app_list", args=["scheduler_app"])).content.decode()
    assert f'href="{reverse("admin:scheduler_app_scheduledtask_dashboard")}"' in html


def test_one_status_vocabulary():
    assert SCHEDULE_STATUS_LABELS["pending"] == dict(TaskExecution.Status.choices)["pending"] == "Pending"
    assert SCHEDULE_STATUS_LABELS["success"] == dict(TaskExecution.Status.choices)["success"] == "Success"


def _node(**fields) -> SchedulerNode:
    now = timezone.now()
    defaults = {"node_id": "n1", "host": "h", "pid": 1, "started_at": now - timedelta(hours=1), "last_heartbeat": now}
    return SchedulerNode.objects.create(**{**defaults, **fields})


def test_the_process_page_shows_seconds_and_no_delete_for_the_live_leader(admin_client):
    beat = timezone.now().replace(microsecond=0)
    leader = _node(is_leader=True, last_heartbeat=beat)
    html = admin_client.get(reverse("admin:scheduler_app_schedulernode_change", args=[leader.pk])).content.decode()
    assert timezone.localtime(beat).strftime("%Y-%m-%d %H:%M:%S") in html
    assert reverse("admin:scheduler_app_schedulernode_delete", args=[leader.pk]) not in html
    delete = reverse("admin:scheduler_app_schedulernode_delete", args=[leader.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == HTTPStatus.FORBIDDEN
    assert SchedulerNode.objects.filter(pk=leader.pk).exists()


def test_a_stopped_process_can_be_deleted_but_the_live_leader_not_even_in_bulk(admin_client):
    leader = _node(node_id="leader", is_leader=True)
    gone = _node(node_id="gone", stopped_at=timezone.now(), last_heartbeat=timezone.now() - timedelta(hours=1))
    page = reverse("admin:scheduler_app_schedulernode_change", args=[gone.pk])
    assert (
        reverse("admin:scheduler_app_schedulernode_delete", args=[gone.pk]) in admin_client.get(page).content.decode()
    )
    changelist = reverse("admin:scheduler_app_schedulernode_changelist")
    both = {"action": "delete_selected", "_selected_action": [leader.pk, gone.pk], "post": "yes"}
    assert admin_client.post(changelist, both).status_code == HTTPStatus.FORBIDDEN
    assert SchedulerNode.objects.count() == 2
    admin_client.post(changelist, {**both, "_selected_action": [gone.pk]})
    assert list(SchedulerNode.objects.values_list("node_id", flat=True)) == ["leader"]
