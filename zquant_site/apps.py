"""The site as an app: its system checks and the demo's management commands (init_scheduler, demo_admin)."""

from django.apps import AppConfig


class SiteConfig(AppConfig):
    name = "zquant_site"
    verbose_name = "zquant site"

    def ready(self) -> None:
        from zquant_site import checks  # noqa: F401 - registers the system checks
