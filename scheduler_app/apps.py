"""App configuration."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SchedulerAppConfig(AppConfig):
    name = "scheduler_app"
    verbose_name = _("Task scheduler")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        from scheduler_app import checks  # noqa: F401 - registers the system checks
        from scheduler_app.actions import example  # noqa: F401 - registers example_task

        # Every installed app's `scheduler_actions` module registers its actions (@action).
        autodiscover_modules("scheduler_actions")
