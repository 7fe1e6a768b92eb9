"""The site's settings plus the benchmark probe app (bench/probe): DJANGO_SETTINGS_MODULE=bench_settings
with bench/ on the path. Everything else is the defaults a user gets."""

from zquant_site.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "probe"]  # noqa: F405
