"""Run the scheduler process: fire every trigger on time and run the work (see scheduling/manager.py)."""

import logging
import signal

from django.core.checks import Tags
from django.core.management.base import BaseCommand, CommandError

from scheduler_app.conf import scheduler_settings
from scheduler_app.executors.sandbox import harden_scheduler_process
from scheduler_app.scheduling.engine import reuse_connections
from scheduler_app.scheduling.manager import SchedulerManager
from scheduler_app.services.tasks import tasks_resume_expired

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def log_to_stderr_unless_configured(logger: logging.Logger, level: str) -> None:
    """The scheduler's log lines (one per fire, finish, skip and error) at `level`, on stderr when the
    project's LOGGING gives them no handler (startproject's does not), instead of nothing at all."""
    logger.setLevel(level)
    if not logger.hasHandlers():
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger.addHandler(handler)


class Command(BaseCommand):
    help = "Run the scheduler: fires the triggers of enabled tasks and runs queued executions. Stop with SIGTERM."
    # The whole set of system checks imports every URLconf, admin and authentication module (over a
    # second), none of which this process serves; `manage.py check` runs them at deployment (README).
    # What the scheduler itself depends on (USE_TZ, its settings, the packages it needs) is checked
    # at every start, by the compatibility checks alone.
    requires_system_checks = []

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--pool-size", type=int, default=None, help="Executions run at once (SCHEDULER_THREAD_POOL_SIZE)."
        )
        parser.add_argument(
            "--poll-seconds", type=float, default=None, help="Main loop interval (SCHEDULER_POLL_SECONDS)."
        )
        parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
        parser.add_argument("--max-seconds", type=float, default=None, help="Stop gracefully after this many seconds.")

    def handle(self, *args, **options) -> None:
        self.check(tags=[Tags.compatibility])
        log_to_stderr_unless_configured(logging.getLogger("scheduler_app"), options["log_level"])
        # First: this process holds the site's secrets (environment, database connection), and the
        # commands it starts must not read them through /proc.
        harden_scheduler_process()
        for name in ("pool_size", "poll_seconds", "max_seconds"):
            if options[name] is not None and options[name] <= 0:
                raise CommandError(f"--{name.replace('_', '-')} must be positive")
        reuse_connections(scheduler_settings.CONN_MAX_AGE)
        manager = SchedulerManager(
            pool_size=options["pool_size"],
            poll_seconds=options["poll_seconds"],
            resume_paused=tasks_resume_expired,  # timed pauses end through the services
        )
        stop_reason = []

        def request_stop(signum, _frame) -> None:
            stop_reason.append(f"scheduler stopped by {signal.Signals(signum).name}")
            manager.request_stop()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        manager.start()
        try:
            manager.run(max_seconds=options["max_seconds"])
        finally:
            manager.stop(stop_reason[0] if stop_reason else "scheduler stopped")
