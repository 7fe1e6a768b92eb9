"""Notifications: subscriptions (who hears about what), and the record of every event and attempt."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from scheduler_app.admin.common import RulePermissionsMixin, badge, local_time
from scheduler_app.models import NotificationDelivery, NotificationEvent, NotificationSubscription
from scheduler_app.services import permissions as rules

DELIVERY_BADGES = {
    NotificationDelivery.State.SENT: "success",
    NotificationDelivery.State.FAILED: "failed",
    NotificationDelivery.State.SUPPRESSED: "skipped",
    NotificationDelivery.State.PENDING: "pending",
    NotificationDelivery.State.SENDING: "running",
}


class ReadOnlyRecordAdmin(RulePermissionsMixin, admin.ModelAdmin):
    """A record written by the scheduler: viewable (and deletable), never added or edited by hand, by anyone:
    its `permission_rules` name view and delete only, and a permission without a rule is refused."""


@admin.register(NotificationSubscription)
class NotificationSubscriptionAdmin(RulePermissionsMixin, admin.ModelAdmin):
    permission_rules = {
        "view": rules.SUBSCRIPTION_VIEW,
        "add": rules.SUBSCRIPTION_ADD,
        "change": rules.SUBSCRIPTION_CHANGE,
        "delete": rules.SUBSCRIPTION_DELETE,
    }
    list_display = ("name", "channel", "target_column", "scope_column", "events_column", "enabled")
    list_filter = ("channel", "enabled")
    search_fields = ("name", "email_to", "webhook_url", "task__name")
    autocomplete_fields = ("task",)
    fieldsets = [
        (None, {"fields": ["name", "enabled", "task"]}),
        (_("Where to"), {"fields": ["channel", "email_to", ("webhook_url", "secret")]}),
        (
            _("Events"),
            {
                "fields": [
                    ("on_failure", "on_recovery"),
                    ("on_stuck", "on_skip"),
                    ("on_no_scheduler", "on_handover_stuck"),
                ],
                "description": _(
                    "One notification per task and event in SCHEDULER_NOTIFY_RATE_LIMIT_SECONDS; the others are "
                    "recorded as suppressed."
                ),
            },
        ),
    ]

    def formfield_for_dbfield(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "webhook_url":
            kwargs["assume_scheme"] = "https"  # an address typed without a scheme is https, not http
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description=_("sent to"))
    def target_column(self, subscription: NotificationSubscription) -> str:
        return subscription.target

    @admin.display(description=_("tasks"), ordering="task__name")
    def scope_column(self, subscription: NotificationSubscription) -> str:
        return subscription.task.name if subscription.task_id else gettext("every task")

    @admin.display(description=_("events"))
    def events_column(self, subscription: NotificationSubscription) -> str:
        fields = NotificationSubscription._meta
        chosen = [str(fields.get_field(flag).verbose_name) for flag in subscription.KIND_FLAGS.values()]
        flags = list(subscription.KIND_FLAGS.values())
        return ", ".join(label for label, flag in zip(chosen, flags, strict=True) if getattr(subscription, flag))


@admin.register(NotificationEvent)
class NotificationEventAdmin(ReadOnlyRecordAdmin):
    permission_rules = {"view": rules.EVENT_VIEW, "delete": rules.EVENT_DELETE}
    list_display = ("detected_at_column", "kind", "task", "execution_column", "summary", "count", "resolved_at")
    list_filter = ("kind", ("resolved_at", admin.EmptyFieldListFilter))
    search_fields = ("summary", "key", "task__name")
    list_select_related = ("task",)
    readonly_fields = (
        "kind",
        "key",
        "task",
        "execution_column",
        "summary",
        "details",
        "count",
        "detected_at",
        "resolved_at",
        "deliveries_column",
    )
    fields = readonly_fields

    @admin.display(description=_("detected at"), ordering="detected_at")
    def detected_at_column(self, event: NotificationEvent) -> str:
        return local_time(event.detected_at)

    @admin.display(description=_("execution"), ordering="execution_id")
    def execution_column(self, event: NotificationEvent) -> SafeString | str:
        if not event.execution_id:
            return "-"
        url = reverse("admin:scheduler_app_taskexecution_change", args=[event.execution_id])
        return format_html('<a href="{}">#{}</a>', url, event.execution_id)

    @admin.display(description=_("deliveries"))
    def deliveries_column(self, event: NotificationEvent) -> SafeString:
        rows = event.deliveries.order_by("id")
        return format_html_join(
            "",
            '<div><a href="{}">#{}</a> {} {} {}</div>',
            (
                (
                    reverse("admin:scheduler_app_notificationdelivery_change", args=[row.pk]),
                    row.pk,
                    badge(DELIVERY_BADGES.get(row.state, row.state), label=row.get_state_display()),
                    row.target,
                    row.reason,
                )
                for row in rows
            ),
        )


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(ReadOnlyRecordAdmin):
    permission_rules = {"view": rules.DELIVERY_VIEW, "delete": rules.DELIVERY_DELETE}
    list_display = (
        "created_at_column",
        "kind",
        "task",
        "subscription",
        "channel",
        "target",
        "state_column",
        "attempts",
        "reason",
    )
    list_filter = ("state", "channel", "kind")
    search_fields = ("target", "reason", "task__name", "subscription__name")
    list_select_related = ("task", "subscription")
    readonly_fields = (
        "event",
        "subscription",
        "kind",
        "task",
        "channel",
        "target",
        "state",
        "reason",
        "attempts",
        "attempt_log",
        "response_status",
        "next_attempt_at",
        "claimed_by",
        "claimed_at",
        "created_at",
        "sent_at",
    )
    fields = readonly_fields

    @admin.display(description=_("created at"), ordering="created_at")
    def created_at_column(self, delivery: NotificationDelivery) -> str:
        return local_time(delivery.created_at)

    @admin.display(description=_("state"), ordering="state")
    def state_column(self, delivery: NotificationDelivery) -> SafeString:
        return badge(DELIVERY_BADGES.get(delivery.state, delivery.state), label=delivery.get_state_display())
