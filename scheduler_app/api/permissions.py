"""The API's first check of who may do what: the rules of services.permissions, before the view runs.

The services check every write again (they are the authority); this check answers 401/403 before
any object is looked up, so a user without the permission gets 403 even for an id that does not
exist, and it is the only check of the reads, which call selectors.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

# Viewset actions and methods that describe the API rather than read data: any signed-in user.
DESCRIPTIONS = ("metadata", "options")


class SchedulerPermission(BasePermission):
    """Signed-in users only; then the view's `required_permissions` names the rule of each operation.

    `required_permissions` maps a viewset action (or, for a plain APIView, an HTTP method in lower
    case) to a services.permissions.Rule. An operation missing from it is refused: a new route
    cannot be open by mistake (tests/api/test_permissions.py walks every route). `is_staff` grants
    nothing. Anonymous requests are refused (401 with a token challenge).
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if not hasattr(view, (request.method or "").lower()):
            return True  # no such operation: the view answers 405
        key = self.operation(request, view)
        if key in DESCRIPTIONS:
            return True
        rule = getattr(view, "required_permissions", {}).get(key)
        return rule is not None and rule.allows(user)

    @staticmethod
    def operation(request: Request, view: Any) -> str:
        method = (request.method or "").lower()
        return getattr(view, "action", None) or ("get" if method == "head" else method)
