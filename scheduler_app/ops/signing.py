"""Webhook signatures: HMAC-SHA256 over "<timestamp>.<body>" with the subscription's secret.

Headers of every webhook request:
    X-Zquant-Timestamp: 1767225600              (Unix seconds when the request was signed)
    X-Zquant-Signature: sha256=<hex digest>     (hmac_sha256(secret, f"{timestamp}.".encode() + body))
    X-Zquant-Event: failed                      (the kind of event)
    X-Zquant-Delivery: 42                       (the same for every retry of one notification)

A receiver recomputes the digest over the raw body, compares in constant time, and refuses old
timestamps (so a recorded request cannot be replayed later). `webhook_verify` does all three.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Zquant-Signature"
TIMESTAMP_HEADER = "X-Zquant-Timestamp"
EVENT_HEADER = "X-Zquant-Event"
DELIVERY_HEADER = "X-Zquant-Delivery"
SIGNATURE_PREFIX = "sha256="
DEFAULT_TOLERANCE_SECONDS = 300


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """The X-Zquant-Signature value for this body, signed at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def webhook_verify(
    *,
    secret: str,
    body: bytes,
    signature: str,
    timestamp: str,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Whether a received request is signed with `secret` and recent (for receivers, and tests)."""
    try:
        signed_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - signed_at) > tolerance_seconds:
        return False
    expected = webhook_signature(secret=secret, timestamp=signed_at, body=body)
    return hmac.compare_digest(expected, signature or "")
