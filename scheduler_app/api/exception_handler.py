"""One place maps domain errors to HTTP: ValidationError 400, Conflict 409, InvalidRequest 400,
PermissionDenied 403, missing 404."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from scheduler_app.exceptions import Conflict, InvalidRequest, PermissionDenied


class ConflictError(exceptions.APIException):
    status_code = HTTPStatus.CONFLICT
    default_detail = "The current state does not allow this."
    default_code = "conflict"


class BadRequestError(exceptions.APIException):
    status_code = HTTPStatus.BAD_REQUEST
    default_detail = "Bad request."
    default_code = "invalid"


class ForbiddenError(exceptions.PermissionDenied):
    default_code = "permission_denied"


def _field_errors(error: DjangoValidationError) -> dict[str, Any]:
    detail = as_serializer_error(error)
    if NON_FIELD_ERRORS in detail:
        detail[api_settings.NON_FIELD_ERRORS_KEY] = detail.pop(NON_FIELD_ERRORS)
    return detail


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, after turning our errors into API exceptions; a `code` is added to our 400/403/409 details."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(_field_errors(exc))
    elif isinstance(exc, ObjectDoesNotExist):
        exc = exceptions.NotFound()
    elif isinstance(exc, Conflict):
        exc = ConflictError(exc.message, code=exc.code)
    elif isinstance(exc, InvalidRequest):
        exc = BadRequestError(exc.message, code=exc.code)
    elif isinstance(exc, PermissionDenied):  # a service's refusal, with the rule's own message
        exc = ForbiddenError(exc.message, code=exc.code)
    elif isinstance(exc, RecursionError):
        exc = exceptions.ParseError("The JSON is nested too deeply.")
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, ConflictError | BadRequestError | ForbiddenError):
        response.data["code"] = exc.get_codes()
    return response
