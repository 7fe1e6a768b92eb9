"""Who may do what: reads need a signed-in user; writes and controls need staff or a model permission."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

ADD_TASK = "scheduler_app.add_scheduledtask"
CHANGE_TASK = "scheduler_app.change_scheduledtask"
DELETE_TASK = "scheduler_app.delete_scheduledtask"
RUN_TASK = "scheduler_app.run_scheduledtask"  # run now, and pause / resume / terminate / rerun executions


class SchedulerPermission(BasePermission):
    """Authenticated users read; the view's `required_permissions` names what each write needs.

    `required_permissions` maps a viewset action (or, for a plain APIView, an HTTP method) to a
    permission; an action missing from it is a read. Staff users may do everything; other users need
    the named permission (from their user or group permissions). Anonymous requests are refused (401
    with a token challenge). The check runs before any object is looked up, so a user without the
    permission gets 403 even for an id that does not exist.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        required = self.required(request, view)
        return required is None or user.is_staff or user.has_perm(required)

    @staticmethod
    def required(request: Request, view: Any) -> str | None:
        permissions: dict[str, str] = getattr(view, "required_permissions", {})
        key = getattr(view, "action", None) or (request.method or "").lower()
        return permissions.get(key)
