"""The leader lease by the database's clock: a node whose own clock is off neither steals the lease
nor keeps it past its expiry; a standby takes over the moment the lease runs out; a leader that lost
its lease (a long freeze) starts nothing it claimed before."""

from __future__ import annotations

import logging
import signal
import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from scheduler_app.models import SchedulerNode, SchedulerState, TaskExecution
from scheduler_app.runtime.clock import db_clock
from scheduler_app.runtime.transitions import execution_claim
from scheduler_app.scheduling.backends import ThreadBackend
from scheduler_app.scheduling.manager import SchedulerManager
from scheduler_app.selectors import database_now
from tests.factories import ScheduledTaskFactory, TaskExecutionFactory
from tests.scheduling.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

LEASE = 15.0


@pytest.fixture
def managers(settings):
    """Start scheduler managers in this process (each with its own node id); stopped at the end."""
    settings.SCHEDULER_LEASE_SECONDS = LEASE
    settings.SCHEDULER_HEARTBEAT_SECONDS = 5
    started: list[SchedulerManager] = []

    def start(node_id: str) -> SchedulerManager:
        manager = SchedulerManager(node_id=node_id, backend=ThreadBackend(pool_size=1))
        manager.start()
        started.append(manager)
        return manager

    yield start
    for manager in started:
        manager.stop("test over")
    db_clock._offset = 0.0


def lease() -> SchedulerState:
    return SchedulerState.objects.get(pk=1)


def test_a_node_whose_clock_runs_ahead_cannot_steal_a_live_lease(managers, caplog):
    healthy = managers("healthy")
    assert healthy.is_leader
    with time_machine.travel(timezone.now() + timedelta(seconds=25), tick=True), caplog.at_level(logging.WARNING):
        ahead = managers("ahead")
    assert not ahead.is_leader
    assert lease().leader == "healthy"
    skew = SchedulerNode.objects.get(node_id="ahead").clock_skew_seconds
    assert 24 < skew < 26
    assert "this node's clock is +25" in caplog.text


def test_a_node_whose_clock_runs_behind_renews_for_a_whole_lease_by_the_databases_clock(managers):
    with time_machine.travel(timezone.now() - timedelta(seconds=30), tick=True):
        behind = managers("behind")
        assert behind.is_leader
    remaining = (lease().lease_expires_at - database_now()).total_seconds()
    assert LEASE - 2 < remaining <= LEASE  # not already expired (which would let a second leader in)


def test_a_standby_tries_again_the_moment_the_lease_runs_out(managers):
    managers("leader")
    standby = managers("standby")
    SchedulerState.objects.filter(pk=1).update(lease_expires_at=database_now() + timedelta(seconds=1.3))
    standby._beat()
    wait = standby._next_beat - time.monotonic()
    assert 1.0 < wait < 1.6, wait  # not the 5 s heartbeat


def test_a_leader_that_lost_its_lease_hands_its_claimed_runs_back_unstarted(managers):
    leader = managers("frozen")
    task = ScheduledTaskFactory(task_type="manual_task", interval_seconds=None)
    claimed = TaskExecutionFactory(task=task, status="pending", scheduled_for=timezone.now())
    assert execution_claim(execution_id=claimed.pk, worker="frozen")
    leader._lease_until = time.monotonic() - 1  # woke up from a freeze longer than the lease
    leader.backend.execute(claimed.pk)
    claimed.refresh_from_db()
    assert (claimed.status, claimed.start_time, claimed.worker) == ("pending", None, "")
    assert not leader._may_fire()  # and no round fires either


@pytest.mark.process
def test_takeover_within_the_lease_after_the_leaders_last_renewal(scheduler):
    """With a 6 s lease and 5 s heartbeats a standby used to look only every 2 s (up to 8 s)."""
    env = {"SCHEDULER_LEASE_SECONDS": "6", "SCHEDULER_HEARTBEAT_SECONDS": "5"}
    first = scheduler(env=env)
    second = scheduler(env=env, wait=False)
    wait_for(lambda: SchedulerNode.objects.filter(pid=second.pid).exists(), 20, message="the standby")
    leader_node = SchedulerNode.objects.get(pid=first.pid).node_id
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    last_renewal = lease().lease_expires_at - timedelta(seconds=6)
    wait_for(lambda: lease().leader not in ("", leader_node), 15, interval=0.02, message="the takeover")
    took_over = database_now()
    assert (took_over - last_renewal).total_seconds() <= 6 + 1
    second.wait_leader()
    assert TaskExecution.objects.count() == 0
