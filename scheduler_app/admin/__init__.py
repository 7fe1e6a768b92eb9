"""The operator's console: tasks, executions, calendars, blackout windows, the dashboard and the scheduler processes.

Importing the modules registers their ModelAdmins with the default admin site (admin autodiscovery
imports this package).
"""

from django.contrib import admin
from django_apscheduler.models import DjangoJob, DjangoJobExecution

from scheduler_app.admin import calendars, executions, nodes, notifications, tasks  # noqa: F401 - registers the ModelAdmins

# runscheduler keeps its APScheduler jobs in django-apscheduler's tables: internal state, rebuilt from the
# tasks, which the console shows and edits instead. Its own admin pages would offer to add jobs by hand.
for model in (DjangoJob, DjangoJobExecution):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
