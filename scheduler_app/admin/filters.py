"""List filters on computed columns (the schedule status annotation, broken triggers)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from scheduler_app.models import ScheduledTask


class ScheduleStatusFilter(admin.SimpleListFilter):
    """Filters on the `schedule_status` annotation of selectors.task_list()."""

    title = _("schedule status")
    parameter_name = "schedule_status"

    def lookups(self, request, model_admin):
        return ScheduledTask.ScheduleStatus.choices

    def queryset(self, request, queryset):
        if self.value() in ScheduledTask.ScheduleStatus.values:
            return queryset.filter(schedule_status=self.value())
        return queryset


class BrokenTriggerFilter(admin.SimpleListFilter):
    """Tasks whose trigger the scheduler could not build (schedule_error is set by the scheduler)."""

    title = _("trigger")
    parameter_name = "broken"

    def lookups(self, request, model_admin):
        return [("yes", _("Broken")), ("no", _("Working"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(schedule_error="")
        if self.value() == "no":
            return queryset.filter(schedule_error="")
        return queryset
