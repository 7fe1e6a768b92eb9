"""GET /api/v1/scheduler/metrics/: Prometheus metrics, read from the database when scraped.

The runs happen in the scheduler process and on Celery workers, so counters kept in the web
process would count nothing: a custom collector (prometheus_client) reads, per scrape, the
counters the leader's operations worker keeps (runs by task and status, lateness and duration
histograms, lease changes, notification outcomes; never decreased by retention) and the live
state (active runs, due queue, hand-overs, leader, heartbeat age, outbox), each a bounded query
(selectors: counters are rows per task and status, live state reads the active rows only).

Access (MetricsAccess): `Authorization: Bearer <SCHEDULER_METRICS_TOKEN>` for Prometheus, which
has no user account and no session (compared in constant time); or a signed-in user (session or
API token) whom services.permissions.METRICS_VIEW allows: the metrics count the runs of named tasks
(EXECUTION_VIEW) and name the leading process's host and pid (SCHEDULER_VIEW).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from rest_framework.request import Request
from rest_framework.views import APIView

from scheduler_app import selectors
from scheduler_app.api.permissions import SchedulerPermission
from scheduler_app.api.views import SchedulerAPIMixin
from scheduler_app.conf import scheduler_settings
from scheduler_app.ops import counters
from scheduler_app.services import permissions as rules

PREFIX = "zquant_scheduler"


class MetricsAccess(SchedulerPermission):
    """The metrics bearer token (when SCHEDULER_METRICS_TOKEN is set), else SchedulerPermission's rule."""

    def has_permission(self, request: Request, view: Any) -> bool:
        token = scheduler_settings.METRICS_TOKEN
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, presented = header.partition(" ")
        if token and scheme.lower() == "bearer":
            return hmac.compare_digest(presented.strip().encode(), token.encode())
        return super().has_permission(request, view)


def _histogram(name: str, doc: str, values: dict[str, float], total: float, bounds: tuple[float, ...]) -> Metric:
    cumulative, buckets = 0.0, []
    for bound in bounds:
        cumulative += values.get(repr(bound), 0.0)
        buckets.append((repr(bound), cumulative))
    buckets.append(("+Inf", cumulative + values.get("+Inf", 0.0)))
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=total)


class SchedulerCollector:
    """Reads the scheduler's counters and live state from the database on every collect()."""

    def collect(self) -> Iterator[Metric]:
        rows = selectors.metrics_counters()
        names = selectors.all_task_names()
        runs = CounterMetricFamily(
            f"{PREFIX}_runs", "Runs that ended, by task and final status.", labels=["task_id", "task", "status"]
        )
        lateness: dict[str, float] = {}
        durations: dict[str, float] = {}
        sums = {counters.LATENESS_SUM: 0.0, counters.DURATION_SUM: 0.0}
        lease_changes = 0.0
        notifications = CounterMetricFamily(
            f"{PREFIX}_notifications", "Notifications by channel and outcome.", labels=["channel", "outcome"]
        )
        for name, task_pk, label, value in rows:
            if name == counters.RUNS and task_pk in names:
                runs.add_metric([str(task_pk), names[task_pk], label], value)
            elif name == counters.LATENESS_BUCKET:
                lateness[label] = value
            elif name == counters.DURATION_BUCKET:
                durations[label] = value
            elif name in sums:
                sums[name] = value
            elif name == counters.LEASE_CHANGES:
                lease_changes = value
            elif name == counters.NOTIFICATIONS:
                channel, _, outcome = label.partition(":")
                notifications.add_metric([channel, outcome], value)
        yield runs
        yield _histogram(
            f"{PREFIX}_fire_lateness_seconds",
            "Start time minus planned time of scheduled runs.",
            lateness,
            sums[counters.LATENESS_SUM],
            counters.LATENESS_BUCKETS,
        )
        yield _histogram(
            f"{PREFIX}_run_duration_seconds",
            "Duration of the runs that ended.",
            durations,
            sums[counters.DURATION_SUM],
            counters.DURATION_BUCKETS,
        )
        yield CounterMetricFamily(
            f"{PREFIX}_lease_changes", "Times a scheduler took the leader lease.", value=lease_changes
        )
        yield notifications
        yield from self._live()

    def _live(self) -> Iterator[Metric]:
        status = selectors.scheduler_status()
        now = status["checked_at"]
        live = selectors.metrics_runs_now(now=now)
        active = GaugeMetricFamily(f"{PREFIX}_runs_active", "Active runs by state.", labels=["status"])
        for state in ("pending", "running", "paused"):
            active.add_metric([state], live[state])
        yield active
        yield GaugeMetricFamily(
            f"{PREFIX}_queue_depth", "Pending runs that are due and wait to start.", value=live["due"]
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_handed_over",
            "Runs handed over to Celery that no worker has started yet.",
            value=live["handed_over"],
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_up", "1 while a scheduler process has a live heartbeat.", value=int(status["online"])
        )
        nodes = [status["leader"], *status["standbys"]] if status["leader"] else status["standbys"]
        yield GaugeMetricFamily(f"{PREFIX}_nodes", "Scheduler processes with a live heartbeat.", value=len(nodes))
        leader = GaugeMetricFamily(
            f"{PREFIX}_leader", "The leading scheduler process (value 1).", labels=["node", "host", "pid"]
        )
        if status["leader"]:
            node = status["leader"]
            leader.add_metric([node["node_id"], node["host"], str(node["pid"])], 1)
        yield leader
        if status["last_heartbeat"] is not None:
            age = max(0.0, (now - status["last_heartbeat"]).total_seconds())
            yield GaugeMetricFamily(
                f"{PREFIX}_heartbeat_age_seconds",
                "Seconds since the newest scheduler heartbeat (database clock).",
                value=age,
            )
        outbox = GaugeMetricFamily(
            f"{PREFIX}_notifications_waiting", "Notifications waiting to be sent.", labels=["state"]
        )
        waiting = selectors.metrics_outbox()
        for state in ("pending", "sending"):
            outbox.add_metric([state], waiting.get(state, 0))
        yield outbox


class MetricsView(SchedulerAPIMixin, APIView):
    """GET metrics/: the Prometheus text format."""

    permission_classes = [MetricsAccess]
    required_permissions = {"get": rules.METRICS_VIEW}
    # Not throttled: scrapes come as often as Prometheus is configured to (several servers may share an
    # address), a refused request costs no query, and the token is too long to guess.
    throttle_classes: list = []

    @extend_schema(
        summary="Prometheus metrics (bearer SCHEDULER_METRICS_TOKEN, or the view permissions on runs and processes)",
        responses={(200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="Prometheus text format 0.0.4.")},
    )
    def get(self, request: Request) -> HttpResponse:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(SchedulerCollector())
        return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
