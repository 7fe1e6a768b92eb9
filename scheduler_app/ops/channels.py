"""Sending one notification: a signed webhook POST (JSON) or an email through Django's mail backend.

Webhooks use the standard library's HTTP client (one POST with a timeout needs no dependency):
redirects are not followed (a 3xx is a failure, so a body signed for one URL never goes to
another), and any answer outside 2xx is a failure that is tried again later.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from scheduler_app.conf import scheduler_settings
from scheduler_app.ops.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    webhook_signature,
)

USER_AGENT = "zquant-scheduler-webhook/1"


@dataclass(frozen=True)
class SendResult:
    ok: bool
    detail: str = ""
    http_status: int | None = None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError with the 3xx code


_opener = urllib.request.build_opener(_NoRedirects)


def webhook_send(*, url: str, secret: str, payload: dict[str, Any], kind: str, delivery_id: int) -> SendResult:
    """POST the payload as JSON, signed; never raises for a network or receiver problem."""
    body = json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str).encode()
    timestamp = int(time.time())
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: webhook_signature(secret=secret, timestamp=timestamp, body=body),
            EVENT_HEADER: kind,
            DELIVERY_HEADER: str(delivery_id),
        },
    )
    try:
        with _opener.open(request, timeout=scheduler_settings.NOTIFY_TIMEOUT_SECONDS) as response:
            response.read(65536)
            return SendResult(True, f"HTTP {response.status}", response.status)
    except urllib.error.HTTPError as error:
        return SendResult(False, f"HTTP {error.code} {error.reason}", error.code)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return SendResult(False, f"{type(error).__name__}: {reason}"[:300])


def email_send(*, recipients: list[str], subject: str, body: str) -> SendResult:
    """Send through the configured mail backend, with the notification timeout."""
    sender = scheduler_settings.NOTIFY_FROM_EMAIL or settings.DEFAULT_FROM_EMAIL
    try:
        connection = get_connection(fail_silently=False, timeout=scheduler_settings.NOTIFY_TIMEOUT_SECONDS)
    except TypeError:  # a backend without a timeout argument
        connection = get_connection(fail_silently=False)
    message = EmailMessage(subject=subject[:200], body=body, from_email=sender, to=recipients, connection=connection)
    try:
        sent = message.send()
    except Exception as error:  # the backends raise smtplib, socket and their own errors
        return SendResult(False, f"{type(error).__name__}: {error}"[:300])
    return SendResult(bool(sent), "sent" if sent else "the mail backend sent nothing")
