"""The Celery app, as Celery's "First steps with Django" sets it up."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "celerybeat_site.settings")
app = Celery("celerybeat_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
