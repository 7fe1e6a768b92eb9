"""Scheduler processes: a read-only list of the runscheduler nodes and their heartbeats."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.db.models.functions import Now
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from scheduler_app import selectors
from scheduler_app.admin.common import RulePermissionsMixin, SchedulerBannerMixin, badge, local_time
from scheduler_app.conf import scheduler_settings
from scheduler_app.models import SchedulerNode
from scheduler_app.runtime.clock import CLOCK_SKEW_WARNING_SECONDS
from scheduler_app.services import permissions as rules


@admin.register(SchedulerNode)
class SchedulerNodeAdmin(RulePermissionsMixin, SchedulerBannerMixin, admin.ModelAdmin):
    permission_rules = {"view": rules.SCHEDULER_VIEW, "delete": rules.SCHEDULER_DELETE}
    list_display = (
        "node_id",
        "host",
        "pid",
        "leader_column",
        "started_column",
        "heartbeat_column",
        "clock_skew_column",
        "jobs",
        "version_seen",
    )
    list_filter = ("is_leader", "host")
    search_fields = ("node_id", "host")
    # The page of one process: its times to the second, in the console's one format (admin.common.local_time).
    fields = (
        "node_id",
        "host",
        "pid",
        "leader_column",
        "started_column",
        "heartbeat_column",
        "stopped_column",
        "clock_skew_column",
        "jobs",
        "version_seen",
    )
    readonly_fields = fields

    class Media:
        css = {"all": ["scheduler_app/admin.css"]}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: SchedulerNode | None = None) -> bool:
        return False  # written by the scheduler processes only

    def has_delete_permission(self, request: HttpRequest, obj: SchedulerNode | None = None) -> bool:
        if obj is not None and obj.is_leader and self._online(obj):
            return False  # the live leader's row is its lease: deleting it would not stop the process
        return super().has_delete_permission(request, obj)

    @staticmethod
    def _online(node: SchedulerNode) -> bool:
        # The definition of selectors.scheduler_status(), applied to one row.
        now = getattr(node, "database_now", None) or selectors.database_now()
        cutoff = now - timedelta(seconds=selectors.ONLINE_HEARTBEATS * scheduler_settings.HEARTBEAT_SECONDS)
        return node.stopped_at is None and node.last_heartbeat >= cutoff

    def get_queryset(self, request: HttpRequest):
        # Heartbeat ages by the database's clock, the one the nodes write their heartbeats by.
        return super().get_queryset(request).annotate(database_now=Now())

    @admin.display(description=_("leader"), boolean=True, ordering="is_leader")
    def leader_column(self, node: SchedulerNode) -> bool:
        return node.is_leader

    @admin.display(description=_("last heartbeat"), ordering="last_heartbeat")
    def heartbeat_column(self, node: SchedulerNode) -> SafeString:
        online = self._online(node)
        label = gettext("online") if online else gettext("stopped") if node.stopped_at else gettext("silent")
        return format_html(
            "{} {}", badge("success" if online else "skipped", label=label), local_time(node.last_heartbeat)
        )

    @admin.display(description=_("started at"), ordering="started_at")
    def started_column(self, node: SchedulerNode) -> str:
        return local_time(node.started_at)

    @admin.display(description=_("stopped at"), ordering="stopped_at")
    def stopped_column(self, node: SchedulerNode) -> str:
        return local_time(node.stopped_at)

    @admin.display(description=_("clock skew"), ordering="clock_skew_seconds")
    def clock_skew_column(self, node: SchedulerNode) -> SafeString | str:
        """How far the node's clock is off the database's: scheduling follows the database's clock,
        but a skew of more than CLOCK_SKEW_WARNING_SECONDS means the host's time sync is broken."""
        if node.clock_skew_seconds is None:
            return "-"
        skew = node.clock_skew_seconds
        text = gettext("%(seconds)+.1f s") % {"seconds": skew}
        return badge("failed" if abs(skew) > CLOCK_SKEW_WARNING_SECONDS else "success", label=text)
