"""The site's 400 and 404 handlers: JSON in DRF's shape under /api/ (where this site mounts its APIs),
Django's pages elsewhere."""

from __future__ import annotations

from http import HTTPStatus

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext
from django.views.defaults import bad_request as django_bad_request
from django.views.defaults import page_not_found

API_PREFIX = "/api/"


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"detail": gettext("Not found.")}, status=HTTPStatus.NOT_FOUND)
    return page_not_found(request, exception)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """E.g. a body larger than DATA_UPLOAD_MAX_MEMORY_SIZE."""
    if request.path.startswith(API_PREFIX):
        return JsonResponse(
            {"detail": gettext("Bad request (the body may be too large).")}, status=HTTPStatus.BAD_REQUEST
        )
    return django_bad_request(request, exception)
