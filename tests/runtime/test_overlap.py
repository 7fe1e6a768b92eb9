"""The overlap decision (runtime/overlap.py), as the table in its docstring says."""

from __future__ import annotations

import pytest

from scheduler_app.runtime.overlap import ActiveRun, Decision, Situation, Verdict, overlap_decide

REQ, OCC, QUE = Situation.REQUEST, Situation.OCCURRENCE, Situation.QUEUED
START, QUEUE, WAIT, SKIP, REFUSE = Verdict.START, Verdict.QUEUE, Verdict.WAIT, Verdict.SKIP, Verdict.REFUSE
STARTED = [ActiveRun(7, True), ActiveRun(9, False)]  # a running run and a pending one
PENDING_ONLY = [ActiveRun(9, False)]

TABLE = [
    # policy, situation, active, verdict, runs to replace
    ("skip", REQ, [], START, ()),
    ("skip", REQ, STARTED, REFUSE, ()),
    ("skip", OCC, STARTED, SKIP, ()),
    ("skip", OCC, PENDING_ONLY, SKIP, ()),
    ("skip", QUE, STARTED, WAIT, ()),
    ("skip", QUE, PENDING_ONLY, START, ()),
    ("queue", REQ, STARTED, QUEUE, ()),
    ("queue", OCC, STARTED, QUEUE, ()),
    ("queue", QUE, STARTED, WAIT, ()),
    ("queue", QUE, PENDING_ONLY, START, ()),
    ("allow", REQ, STARTED, START, ()),
    ("allow", OCC, STARTED, START, ()),
    ("allow", QUE, STARTED, START, ()),
    ("replace", REQ, STARTED, QUEUE, (7, 9)),
    ("replace", OCC, STARTED, QUEUE, (7, 9)),
    ("replace", QUE, STARTED, WAIT, (7,)),
    ("replace", QUE, PENDING_ONLY, START, ()),
    ("replace", OCC, [], START, ()),
    ("no such policy", OCC, STARTED, SKIP, ()),  # unknown: the default, skip
]


@pytest.mark.parametrize(("policy", "situation", "active", "verdict", "replace"), TABLE)
def test_the_overlap_table(policy, situation, active, verdict, replace):
    decision = overlap_decide(policy=policy, situation=situation, active=active)
    assert (decision.verdict, decision.replace) == (verdict, replace)


def test_the_reason_names_the_run_that_holds_the_new_one_back():
    decision = overlap_decide(policy="skip", situation=OCC, active=[ActiveRun(12, True), ActiveRun(30, False)])
    assert decision.reason == "run #12 was still active (overlap policy: skip)"
    assert Decision(START).reason == ""
