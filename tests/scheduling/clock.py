"""Run a management command with the clock moved (time-machine, ticking): `python -m tests.scheduling.clock
2026-11-01T05:29:57+00:00 runscheduler ...`. Lets process tests reach a cron minute or a DST change now."""

import os
import sys
from datetime import datetime

import time_machine


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zquant_site.settings")
    start = datetime.fromisoformat(sys.argv[1])
    with time_machine.travel(start, tick=True):
        import django
        from django.core.management import execute_from_command_line

        django.setup()
        from scheduler_app.runtime.clock import db_clock

        # The database cannot travel with this process: take the moved clock as the database's too.
        db_clock.use_local_clock()
        execute_from_command_line(["manage.py", *sys.argv[2:]])


if __name__ == "__main__":
    main()
