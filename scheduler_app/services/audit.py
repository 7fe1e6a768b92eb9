"""The record of what operators did: one OperatorAction row per manual action.

The service that performs an action calls `action_record()` inside its own transaction, after its
permission check passed and its write succeeded, so the record exists exactly when the action
happened. Recording checks no permission of its own: it is never an entry point's business.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler_app.models import OperatorAction, ScheduledTask
from scheduler_app.runtime.clock import db_now
from scheduler_app.services.permissions import SYSTEM, Actor, recorded_user

REASON_MAX_LENGTH = OperatorAction._meta.get_field("reason").max_length
SYSTEM_NAME = "system"


def actor_name(actor: Actor) -> str:
    """How the record names who acted: the user's login name, or "system" for the server's commands."""
    user = recorded_user(actor)
    if user is not None:
        return str(user.get_username())[:150]
    return SYSTEM_NAME if actor is SYSTEM else ""


def action_record(
    *,
    actor: Actor,
    action: OperatorAction.Action | str,
    task: ScheduledTask | None = None,
    execution_id: int | None = None,
    reason: str = "",
    details: Mapping[str, Any] | None = None,
) -> OperatorAction:
    """Record one manual action (in the caller's transaction). A reason longer than the column is cut."""
    return OperatorAction.objects.create(
        at=db_now(),
        action=action,
        actor=recorded_user(actor),
        actor_name=actor_name(actor),
        task=task,
        task_name=task.name if task is not None else "",
        execution_id=execution_id,
        reason=(reason or "").strip()[:REASON_MAX_LENGTH],
        details=dict(details or {}),
    )
