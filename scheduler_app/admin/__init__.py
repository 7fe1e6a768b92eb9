"""The operator's console: tasks, executions, calendars, blackout windows, the dashboard and the scheduler processes.

Importing the modules registers their ModelAdmins with the default admin site (admin autodiscovery
imports this package).
"""

from scheduler_app.admin import calendars, executions, nodes, notifications, tasks  # noqa: F401 - registers the ModelAdmins
