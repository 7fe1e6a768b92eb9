"""The overlap decision: what a task's active runs mean for a new one. Pure: no database, no clock.

This is the only place the overlap policy is read. Three situations ask:

- REQUEST: someone asks for a run now (run now, rerun, resume, backfill). `active` is every active
  run of the task (pending, handed over, running, paused).
- OCCURRENCE: a scheduled occurrence is due. `active` is the task's started and handed-over runs
  and its pending runs that are due (a pending retry due later does not hold the schedule back).
- QUEUED: the dispatcher may start a pending run. `active` is the task's started and handed-over
  runs, plus runs of the task started earlier in the same batch; other pending rows are not
  competitors here (the dispatcher takes them in order).

| policy  | nothing active | REQUEST            | OCCURRENCE         | QUEUED                  |
|---------|----------------|--------------------|--------------------|-------------------------|
| skip    | START          | REFUSE             | SKIP               | WAIT                    |
| queue   | START          | QUEUE              | QUEUE              | WAIT                    |
| allow   | START          | START              | START              | START                   |
| replace | START          | QUEUE, replace all | QUEUE, replace all | WAIT, replace started   |

START means "start it as soon as a worker is free" (a request is always written `pending` for the
scheduler to claim); QUEUE means "write it `pending`, it starts once the active runs end"; WAIT means
"leave the pending run for a later round"; SKIP records the occurrence as skipped with the reason;
REFUSE answers the request with a conflict. `replace` lists the runs to stop first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from scheduler_app.selectors import ActiveRun


class Situation(StrEnum):
    REQUEST = "request"
    OCCURRENCE = "occurrence"
    QUEUED = "queued"


class Verdict(StrEnum):
    START = "start"
    QUEUE = "queue"
    WAIT = "wait"
    SKIP = "skip"
    REFUSE = "refuse"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    replace: tuple[int, ...] = ()
    blocking: int | None = None  # the run that holds the new one back, for the reason shown

    @property
    def reason(self) -> str:
        """Why an occurrence is skipped (or a request refused), in the words the rows and logs use."""
        if self.verdict not in (Verdict.SKIP, Verdict.REFUSE):
            return ""
        if self.blocking:
            return f"run #{self.blocking} was still active (overlap policy: skip)"
        return "another occurrence due at the same instant runs (overlap policy: skip)"


__all__ = ["ActiveRun", "Decision", "Situation", "Verdict", "overlap_decide"]

POLICIES = ("skip", "queue", "allow", "replace")


def overlap_decide(*, policy: str, situation: Situation, active: Sequence[ActiveRun]) -> Decision:
    """The table of the module docstring; an unknown policy is treated as the default, skip."""
    if policy not in POLICIES:
        policy = "skip"
    if not active or policy == "allow":
        return Decision(Verdict.START)
    # Runs not written yet (an occurrence due at the same instant, id 0) hold back but cannot be stopped.
    written = [run.id for run in active if run.id]
    first = min(written) if written else None
    if situation is Situation.QUEUED:
        started = tuple(sorted(run.id for run in active if run.started))
        if not started:
            return Decision(Verdict.START)
        stoppable = tuple(pk for pk in started if pk) if policy == "replace" else ()
        return Decision(Verdict.WAIT, replace=stoppable, blocking=stoppable[0] if stoppable else first)
    if policy == "skip":
        verdict = Verdict.REFUSE if situation is Situation.REQUEST else Verdict.SKIP
        return Decision(verdict, blocking=first)
    replace = tuple(sorted(run.id for run in active if run.id)) if policy == "replace" else ()
    return Decision(Verdict.QUEUE, replace=replace, blocking=first)
