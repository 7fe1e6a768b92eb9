"""App configuration."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MarketDataConfig(AppConfig):
    name = "marketdata"
    verbose_name = _("Market data")
    default_auto_field = "django.db.models.BigAutoField"
