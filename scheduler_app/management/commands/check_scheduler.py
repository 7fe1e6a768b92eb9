"""Is a scheduler alive? For cron or a systemd timer: a dead scheduler cannot report its own death.

Exits 0 when a scheduler process has a live heartbeat. Otherwise, once no heartbeat has been seen
for SCHEDULER_NOTIFY_SCHEDULER_DOWN_SECONDS, it records a "no live scheduler" event (once per outage:
the event is keyed by the last heartbeat seen), sends its notifications itself (and retries the ones
an earlier run could not send), and exits 1 with one line saying since when. The next leader closes
the outage with a "recovered" notification.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from scheduler_app import selectors
from scheduler_app.conf import scheduler_settings
from scheduler_app.models import NotificationEvent
from scheduler_app.ops.delivery import DeliverySender
from scheduler_app.ops.events import EventDraft, events_record

Kind = NotificationEvent.Kind


class Command(BaseCommand):
    help = "Exit 1 (and notify the subscriptions to 'no live scheduler') when no scheduler process is alive."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--no-notify", action="store_true", help="Only check; record and send nothing.")

    def handle(self, *args, **options) -> None:
        status = selectors.scheduler_status()
        if status["online"]:
            leader = status["leader"]
            self.stdout.write(f"scheduler alive: leader {leader['node_id'] if leader else '(none yet)'}")
            return
        now = status["checked_at"]
        last = status["last_heartbeat"]
        silent = (now - last).total_seconds() if last else None
        since = f"last heartbeat {last.isoformat()} ({silent:.0f} s ago)" if last else "no scheduler has ever run"
        grace = scheduler_settings.NOTIFY_SCHEDULER_DOWN_SECONDS
        if silent is not None and silent < grace:
            self.stdout.write(f"no live scheduler yet within the grace of {grace:.0f} s: {since}")
            return
        if not options["no_notify"]:
            events_record(
                drafts=[
                    EventDraft(
                        kind=Kind.NO_SCHEDULER,
                        key=f"no_scheduler:{last.isoformat() if last else 'never'}",
                        summary=f"No live scheduler: {since}",
                        details={"last_heartbeat": last.isoformat() if last else None},
                    )
                ],
                now=now,
            )
            self._send(now)
        raise CommandError(f"no live scheduler: {since}")

    def _send(self, now) -> None:
        """Send the outage's notifications here: no scheduler is there to drain the outbox."""
        sender = DeliverySender(name="check_scheduler")
        try:
            while sender.pump(now=now, kinds=[Kind.NO_SCHEDULER]):
                sender.wait(scheduler_settings.NOTIFY_TIMEOUT_SECONDS + 5)
        finally:
            sender.wait(scheduler_settings.NOTIFY_TIMEOUT_SECONDS + 5)
            sender.shutdown()
