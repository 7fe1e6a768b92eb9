"""Login lockout at the site's two ways in: the admin login form and the API token endpoint.

django-axes counts failed logins in its authentication backend (settings: AXES_*); this module gives
its decisions the shape each way in answers with: a page in the admin's look, or a DRF error.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off, get_failure_limit
from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

LOCKED_OUT = _("Too many failed logins for this username from your address; try again later.")


def client_ip(request: HttpRequest | Request) -> str | None:
    """The client's address as the API throttles see it (NUM_PROXIES), so that lockout and throttles agree."""
    return BaseThrottle().get_ident(request)


def _cool_off_seconds(request: HttpRequest | Request) -> int | None:
    """The wait after a refused login: the whole cool-off, since axes restarts it at each attempt meanwhile."""
    cool_off = get_cool_off(request)
    return int(cool_off.total_seconds()) if cool_off else None


def lockout_response(request: HttpRequest, original_response: HttpResponse | None, credentials: Any) -> HttpResponse:
    """What axes' middleware answers (AXES_LOCKOUT_CALLABLE) to a refused admin login: a page, 429."""
    seconds = _cool_off_seconds(request)
    context = {
        **admin.site.each_context(request),
        "title": gettext("Too many failed logins"),
        "failure_limit": get_failure_limit(request, credentials),
        "cool_off_minutes": None if seconds is None else max(1, round(seconds / 60)),
    }
    response = render(request, "admin/lockout.html", context, status=HTTPStatus.TOO_MANY_REQUESTS)
    if seconds is not None:
        response["Retry-After"] = str(seconds)
    return response


class LoginLockedOut(exceptions.Throttled):
    default_detail = LOCKED_OUT
    default_code = "locked_out"


class TokenView(ObtainAuthToken):
    """DRF's token endpoint under the login lockout and the API throttles (which DRF's view turns off).

    DRF hands authenticate() its own Request, so axes marks that object as locked out, not the
    HttpRequest that axes' middleware looks at: the lockout is answered here, as a DRF error (429
    with Retry-After). A token handed out is a successful login, so it clears this username's
    failures from this address, as a session login does (AXES_RESET_ON_SUCCESS).
    """

    throttle_classes = APIView.throttle_classes

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid():
            if getattr(request, "axes_locked_out", False):
                raise LoginLockedOut(wait=_cool_off_seconds(request))
            raise exceptions.ValidationError(serializer.errors)
        if settings.AXES_RESET_ON_SUCCESS:
            AxesProxyHandler.reset_attempts(
                ip_address=client_ip(request), username=serializer.validated_data["username"]
            )
        token, _created = Token.objects.get_or_create(user=serializer.validated_data["user"])
        return Response({"token": token.key})
