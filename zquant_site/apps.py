"""The site as an app, so that its system checks are registered."""

from django.apps import AppConfig


class SiteConfig(AppConfig):
    name = "zquant_site"
    verbose_name = "zquant site"

    def ready(self) -> None:
        from zquant_site import checks  # noqa: F401 - registers the system checks
