"""Routes of the scheduler API, in the application namespace "scheduler_api", under whatever prefix the
project includes them at (`path("api/scheduler/", include("scheduler_app.api.urls"))`)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from scheduler_app.api import metrics, notifications, views

app_name = "scheduler_api"

router = SimpleRouter()
router.register("tasks", views.TaskViewSet, basename="task")
router.register(r"tasks/(?P<task_pk>[^/.]+)/executions", views.TaskExecutionViewSet, basename="task-execution")
router.register("executions", views.ExecutionViewSet, basename="execution")
router.register("notifications/subscriptions", notifications.SubscriptionViewSet, basename="notification-subscription")

urlpatterns = [
    path("actions/", views.ActionListView.as_view(), name="action-list"),
    path("stats/", views.StatsView.as_view(), name="stats"),
    path("workflows/validate/", views.WorkflowValidateView.as_view(), name="workflow-validate"),
    path("schedules/preview/", views.SchedulePreviewView.as_view(), name="schedule-preview"),
    path("scheduler/status/", views.SchedulerStatusView.as_view(), name="scheduler-status"),
    path("metrics/", metrics.MetricsView.as_view(), name="metrics"),
    *router.urls,
]
