"""Calendars (with their listed days inline) and blackout windows in the admin.

Every write goes through scheduler_app.services.calendars and .blackouts, as for tasks: a change
bumps the calendar's revision and the schedule version, so the scheduler rebuilds what uses it. A
calendar an app publishes (`source`) shows its days read-only: the next publication replaces them.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from scheduler_app.admin.common import RulePermissionsMixin, SchedulerBannerMixin
from scheduler_app.calendar_rules import CalendarDays, describe_weekdays
from scheduler_app.exceptions import SchedulerError
from scheduler_app.models import BlackoutWindow, Calendar, CalendarDay
from scheduler_app.occurrences import Blackout
from scheduler_app.schedules import InvalidSchedule, parse_weekdays
from scheduler_app.services import blackouts as blackout_services
from scheduler_app.services import calendars as calendar_services
from scheduler_app.services import permissions as rules


class CalendarDayInline(admin.TabularInline):
    model = CalendarDay
    fields = ("date", "kind", "closes_at", "note")
    extra = 1
    ordering = ("date",)

    def _published(self, obj: Calendar | None) -> bool:
        return obj is not None and bool(obj.source)

    def _may_edit(self, request: HttpRequest, obj: Calendar | None) -> bool:
        """The days are part of the calendar, changed with CALENDAR_CHANGE (on the add page too), as the
        service that replaces them checks."""
        return not self._published(obj) and rules.CALENDAR_CHANGE.allows(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Calendar | None = None) -> bool:
        return rules.CALENDAR_VIEW.allows(request.user)

    def has_add_permission(self, request: HttpRequest, obj: Calendar | None = None) -> bool:
        return self._may_edit(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Calendar | None = None) -> bool:
        return self._may_edit(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Calendar | None = None) -> bool:
        return self._may_edit(request, obj)


@admin.register(Calendar)
class CalendarAdmin(RulePermissionsMixin, SchedulerBannerMixin, admin.ModelAdmin):
    permission_rules = {
        "view": rules.CALENDAR_VIEW,
        "add": rules.CALENDAR_ADD,
        "change": rules.CALENDAR_CHANGE,
        "delete": rules.CALENDAR_DELETE,
    }
    list_display = ("name", "weekdays_column", "days_column", "known_until", "source_column", "used_column")
    search_fields = ("name", "description")
    inlines = [CalendarDayInline]
    fields = ("name", "description", "weekdays", "known_until", "source", "revision")
    readonly_fields = ("source", "revision")

    class Media:
        css = {"all": ["scheduler_app/admin.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Calendar]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                listed=Count("days", distinct=True),
                holidays=Count("days", filter=Q(days__kind=CalendarDay.Kind.CLOSED), distinct=True),
                users=Count("tasks", distinct=True) + Count("event_tasks", distinct=True),
            )
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Calendar | None = None):
        if obj is not None and obj.source:
            return (*self.readonly_fields, "weekdays", "known_until")  # the publishing app's
        return self.readonly_fields

    @admin.display(description=_("open weekdays"))
    def weekdays_column(self, calendar: Calendar) -> str:
        try:
            return describe_weekdays(parse_weekdays(calendar.weekdays))
        except InvalidSchedule:
            return calendar.weekdays

    @admin.display(description=_("listed days"), ordering="listed")
    def days_column(self, calendar: Calendar) -> str:
        return gettext("%(listed)s (%(holidays)s closed)") % {"listed": calendar.listed, "holidays": calendar.holidays}

    @admin.display(description=_("source"), ordering="source")
    def source_column(self, calendar: Calendar) -> SafeString:
        if not calendar.source:
            return format_html('<span class="zq-muted">{}</span>', gettext("kept here"))
        return format_html("<code>{}</code>", calendar.source)

    @admin.display(description=_("used by tasks"), ordering="users")
    def used_column(self, calendar: Calendar) -> int:
        return calendar.users

    # ------------------------------------------------------------------ writes, through the services

    def save_model(self, request: HttpRequest, obj: Calendar, form, change: bool) -> None:
        data = {
            name: form.cleaned_data[name] for name in calendar_services.EDITABLE_FIELDS if name in form.cleaned_data
        }
        if change:
            saved = calendar_services.calendar_update(calendar=obj, data=data, actor=request.user)
        else:
            saved = calendar_services.calendar_create(data=data, actor=request.user)
        obj.pk, obj.revision = saved.pk, saved.revision
        obj._state.adding = False

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        """The listed days as the inline shows them, replaced in one service call."""
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        calendar = form.instance
        if calendar.source:
            return
        deleted = set(formset.deleted_forms)
        days = [
            calendar_services.DaySpec(
                date=inline.cleaned_data["date"],
                kind=inline.cleaned_data["kind"],
                note=inline.cleaned_data.get("note") or "",
                closes_at=inline.cleaned_data.get("closes_at"),
            )
            for inline in formset.forms
            if inline not in deleted and inline.cleaned_data.get("date") is not None
        ]
        calendar_services.calendar_days_replace(calendar=calendar, days=days, actor=request.user)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except SchedulerError as error:
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_model(self, request: HttpRequest, obj: Calendar) -> None:
        calendar_services.calendar_delete(calendar=obj, actor=request.user)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except SchedulerError as error:
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:scheduler_app_calendar_change", args=[object_id]))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Calendar]) -> None:
        deleted = 0
        for calendar in list(queryset):
            try:
                calendar_services.calendar_delete(calendar=calendar, actor=request.user)
            except SchedulerError as error:
                self.message_user(
                    request,
                    gettext('Calendar "%(name)s" was not deleted: %(reason)s')
                    % {"name": calendar.name, "reason": error.message},
                    messages.ERROR,
                )
            else:
                deleted += 1
        if deleted:
            self.message_user(
                request,
                ngettext("%(count)d calendar was deleted.", "%(count)d calendars were deleted.", deleted)
                % {"count": deleted},
                messages.SUCCESS,
            )


def _window_text(window: BlackoutWindow) -> str:
    """The window in words, as skipped runs name it ("“Lunch break” (11:30–13:00 on open days of SSE ...)")."""
    # Only the calendar's name is shown: no need for its days.
    calendar = CalendarDays(name=window.calendar.name, weekdays=frozenset()) if window.calendar_id else None
    return Blackout(
        id=window.pk or 0,
        name=window.name,
        action=window.action,
        kind=window.kind,
        timezone=window.timezone,
        from_time=window.from_time,
        until_time=window.until_time,
        starts_at=window.starts_at,
        ends_at=window.ends_at,
        calendar=calendar,
    ).describe()


@admin.register(BlackoutWindow)
class BlackoutWindowAdmin(RulePermissionsMixin, SchedulerBannerMixin, admin.ModelAdmin):
    permission_rules = {
        "view": rules.BLACKOUT_VIEW,
        "add": rules.BLACKOUT_ADD,
        "change": rules.BLACKOUT_CHANGE,
        "delete": rules.BLACKOUT_DELETE,
    }
    list_display = ("name", "scope_column", "window_column", "action", "enabled")
    list_filter = ("enabled", "kind", "action")
    search_fields = ("name", "description", "task__name")
    list_select_related = ("task", "calendar")
    fieldsets = [
        (None, {"fields": ["name", "task", "action", "enabled", "description"]}),
        (
            _("When"),
            {
                "fields": ["kind", "timezone", ("from_time", "until_time"), "calendar", ("starts_at", "ends_at")],
                "description": _(
                    "Daily: from a time to a time (crossing midnight when the end is earlier), optionally only on "
                    "open days of a calendar. Once: from one instant to another. The end is not part of the window."
                ),
            },
        ),
    ]

    class Media:
        css = {"all": ["scheduler_app/admin.css"]}

    @admin.display(description=_("applies to"), ordering="task__name")
    def scope_column(self, window: BlackoutWindow) -> SafeString:
        if window.task_id is None:
            return format_html("<strong>{}</strong>", gettext("every task"))
        url = reverse("admin:scheduler_app_scheduledtask_change", args=[window.task_id])
        return format_html('<a href="{}">{}</a>', url, window.task.name)

    @admin.display(description=_("window"))
    def window_column(self, window: BlackoutWindow) -> str:
        return _window_text(window)

    def save_model(self, request: HttpRequest, obj: BlackoutWindow, form, change: bool) -> None:
        data: dict[str, Any] = {
            name: form.cleaned_data[name] for name in blackout_services.EDITABLE_FIELDS if name in form.cleaned_data
        }
        if change:
            saved = blackout_services.blackout_update(window=obj, data=data, actor=request.user)
        else:
            saved = blackout_services.blackout_create(data=data, actor=request.user)
        obj.pk = saved.pk
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: BlackoutWindow) -> None:
        blackout_services.blackout_delete(window=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[BlackoutWindow]) -> None:
        for window in list(queryset):
            blackout_services.blackout_delete(window=window, actor=request.user)
