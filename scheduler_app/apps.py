"""App configuration."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SchedulerAppConfig(AppConfig):
    name = "scheduler_app"
    verbose_name = _("Task scheduler")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from scheduler_app import checks  # noqa: F401 - registers the system checks
