"""Admin registration of tasks and executions (the operator's console grows from here)."""

from django.contrib import admin

from scheduler_app.models import ScheduledTask, TaskExecution


@admin.register(ScheduledTask)
class ScheduledTaskAdmin(admin.ModelAdmin):
    list_display = ("name", "task_type", "cron_expression", "interval_seconds", "enabled", "paused", "updated_at")
    list_filter = ("task_type", "enabled", "paused")
    search_fields = ("name", "description")


@admin.register(TaskExecution)
class TaskExecutionAdmin(admin.ModelAdmin):
    list_display = ("id", "task", "status", "trigger", "scheduled_for", "start_time", "duration_seconds")
    list_filter = ("status", "trigger")
    list_select_related = ("task",)
    raw_id_fields = ("task", "parent")
    date_hierarchy = "created_at"
