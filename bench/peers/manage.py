"""manage.py of the peer projects (run with /tmp/zq-peers-venv's Python; DJANGO_SETTINGS_MODULE picks the
project: celerybeat_site.settings or apscheduler_site.settings)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "celerybeat_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
