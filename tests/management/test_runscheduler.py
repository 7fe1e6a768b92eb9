"""runscheduler's log lines reach the operator whether or not the project's LOGGING names them."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from scheduler_app.management.commands.runscheduler import log_to_stderr_unless_configured

ROOT = Path(__file__).resolve().parents[2]
# In a process of its own: pytest hangs capture handlers on loggers, which would count as configured.
UNCONFIGURED = """
import logging, django
django.setup()
from scheduler_app.management.commands.runscheduler import log_to_stderr_unless_configured
logger = logging.getLogger("unconfigured.scheduler_app")
logger.propagate = False  # like a project whose LOGGING has no handler on the way
log_to_stderr_unless_configured(logger, "INFO")
logger.info("fire task=1")
logger.debug("not at INFO")
"""


def test_a_project_without_logging_still_sees_the_lines():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "zquant_site.settings"}
    result = subprocess.run(
        [sys.executable, "-c", UNCONFIGURED], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.rstrip().endswith("INFO unconfigured.scheduler_app fire task=1")
    assert "not at INFO" not in result.stderr


def test_a_projects_own_handler_is_left_alone():
    logger = logging.getLogger("configured.scheduler_app")  # reaches the site's root handler
    before = list(logger.handlers)
    try:
        log_to_stderr_unless_configured(logger, "WARNING")
        assert logger.handlers == before
        assert logger.level == logging.WARNING
    finally:
        logger.setLevel(logging.NOTSET)


def test_the_scheduler_refuses_to_start_on_a_setting_it_cannot_work_with(tmp_path):
    """runscheduler skips the project-wide checks (URLconfs, admin) but not the scheduler's own."""
    settings_module = tmp_path / "naive_settings.py"
    settings_module.write_text("from zquant_site.settings import *  # noqa: F403\nUSE_TZ = False\n")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "naive_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "runscheduler", "--max-seconds", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "scheduler_app.E001" in result.stderr
    assert "USE_TZ is False" in result.stderr
