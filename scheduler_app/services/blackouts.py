"""Blackout window services: create, update, delete. Each change bumps the schedule version on
commit, so the scheduler applies the windows from its next round (scheduling/firing.py). Each
checks its rule of services.permissions first (BLACKOUT_ADD, BLACKOUT_CHANGE, BLACKOUT_DELETE)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from scheduler_app.models import BlackoutWindow
from scheduler_app.services.permissions import BLACKOUT_ADD, BLACKOUT_CHANGE, BLACKOUT_DELETE, Actor
from scheduler_app.services.state import schedule_touch

EDITABLE_FIELDS: tuple[str, ...] = (
    "name",
    "task",
    "kind",
    "action",
    "timezone",
    "from_time",
    "until_time",
    "calendar",
    "starts_at",
    "ends_at",
    "enabled",
    "description",
)


def _editable(data: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(data) - set(EDITABLE_FIELDS))
    if unknown:
        raise TypeError(f"Not editable blackout window fields: {', '.join(unknown)}")
    return dict(data)


@transaction.atomic
def blackout_create(*, data: Mapping[str, Any], actor: Actor) -> BlackoutWindow:
    """A new blackout window for one task (`task`) or for every task (no task)."""
    BLACKOUT_ADD.check(actor)
    window = BlackoutWindow(**_editable(data))
    window.full_clean()
    window.save()
    schedule_touch()
    return window


@transaction.atomic
def blackout_update(*, window: BlackoutWindow, data: Mapping[str, Any], actor: Actor) -> BlackoutWindow:
    BLACKOUT_CHANGE.check(actor)
    window = BlackoutWindow.objects.select_for_update().get(pk=window.pk)
    for name, value in _editable(data).items():
        setattr(window, name, value)
    window.full_clean()
    window.save()
    schedule_touch()
    return window


@transaction.atomic
def blackout_delete(*, window: BlackoutWindow, actor: Actor) -> None:
    BLACKOUT_DELETE.check(actor)
    BlackoutWindow.objects.filter(pk=window.pk).delete()
    schedule_touch()
