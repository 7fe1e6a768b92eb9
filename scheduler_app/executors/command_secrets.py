"""Secrets of command tasks: named in a task's config, valued only on the server, never stored.

A task asks for secrets by name in `env_from`, either `{"ENV_NAME": "secret_name"}` or a list of
names (`["TUSHARE_TOKEN"]`: the variable is named like the secret). The values come from the
server's settings when the run starts (SCHEDULER_SECRETS and SCHEDULER_SECRET_<NAME>, see
conf.SECRETS) and go into that child's environment only. Unknown names are refused when the task is
saved, and again when it runs.

Whatever the run prints or reports is redacted before it is kept: each secret's value becomes
`[redacted:<name>]` in output_tail, the result and the error. Output is redacted per stream as it is
read, holding back the few bytes that could be the start of a value, so a value split across reads,
or interleaved with the other stream in output_tail, is still caught. This guards against a secret
printed by accident (a debug print, a traceback, a logged URL); a program that wants to leak a value
it was given can always encode it: who may create command tasks is the real boundary.
"""

from __future__ import annotations

import re
from typing import Any

from django.utils.translation import gettext as _

from scheduler_app.conf import scheduler_settings
from scheduler_app.executors.sandbox import env_name_problem

MARKER = "[redacted:{name}]"


def parse_env_from(raw: Any) -> tuple[dict[str, str], list[str]]:
    """({ENV_NAME: secret name}, problems) of a config's `env_from`, checked against the server's secrets."""
    if raw in (None, {}, []):
        return {}, []
    if isinstance(raw, list):
        pairs = [(name, name) for name in raw]
    elif isinstance(raw, dict):
        pairs = list(raw.items())
    else:
        return {}, [_("env_from must be a list of secret names or an object of NAME: secret name pairs.")]
    try:
        known = scheduler_settings.SECRETS
    except ValueError as error:
        return {}, [_("The server's secrets are misconfigured: %(error)s") % {"error": error}]
    mapping: dict[str, str] = {}
    problems: list[str] = []
    for env_name, secret in pairs:
        problem = env_name_problem(env_name)
        if problem:
            problems.append(_("env_from: %(problem)s") % {"problem": problem})
        elif not isinstance(secret, str) or secret.lower() not in known:
            problems.append(_("env_from: %(name)r is not a secret of this server.") % {"name": secret})
        else:
            mapping[env_name] = secret.lower()
    return mapping, problems


def secret_values(env_from: dict[str, str]) -> dict[str, str]:
    """{secret name: value} of the secrets `env_from` names (read now, at the start of the run)."""
    known = scheduler_settings.SECRETS
    return {secret: known[secret] for secret in env_from.values()}


class Redactor:
    """Replaces every secret value in what a run printed or reported with `[redacted:<name>]`."""

    def __init__(self, secrets: dict[str, str]) -> None:
        by_value: dict[str, str] = {}
        for name, value in secrets.items():
            by_value.setdefault(value, name)
        longest_first = sorted(by_value, key=len, reverse=True)  # a value inside a longer one loses
        self._markers = {value: MARKER.format(name=name) for value, name in by_value.items()}
        self._pattern = re.compile("|".join(map(re.escape, longest_first))) if longest_first else None
        self._byte_markers = {value.encode(): self._markers[value].encode() for value in longest_first}
        self._byte_pattern = re.compile(b"|".join(map(re.escape, self._byte_markers))) if longest_first else None

    def text(self, text: str | None) -> str | None:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(lambda match: self._markers[match.group()], text)

    def value(self, value: Any) -> Any:
        """`value` with every text in it redacted (dict keys and values, lists, strings)."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.value(key): self.value(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        return value

    def stream(self) -> StreamRedactor:
        """A redactor for one output stream, fed its bytes as they are read."""
        return StreamRedactor(self._byte_pattern, self._byte_markers)


class StreamRedactor:
    """Redacts a byte stream chunk by chunk: a value split across chunks is still replaced.

    The tail of each chunk that could be the beginning of a value is held back until the next chunk
    (or the end) tells; nothing else is delayed.
    """

    def __init__(self, pattern: re.Pattern[bytes] | None, markers: dict[bytes, bytes]) -> None:
        self._pattern = pattern
        self._markers = markers
        self._longest = max(map(len, markers), default=0)
        self._carry = b""

    def _could_grow(self, tail: bytes) -> bool:
        return any(len(value) > len(tail) and value.startswith(tail) for value in self._markers)

    def feed(self, chunk: bytes) -> bytes:
        if self._pattern is None:
            return chunk
        data = self._carry + chunk
        out = bytearray()
        position = 0
        for match in self._pattern.finditer(data):
            if self._could_grow(data[match.start() :]):  # a longer value may go on in the next chunk
                break
            out += data[position : match.start()]
            out += self._markers[match.group()]
            position = match.end()
        hold = len(data)
        for start in range(max(position, len(data) - self._longest + 1), len(data)):
            if self._could_grow(data[start:]):
                hold = start
                break
        out += data[position:hold]
        self._carry = data[hold:]
        return bytes(out)

    def flush(self) -> bytes:
        """The held-back bytes, at the end of the stream."""
        data, self._carry = self._carry, b""
        if self._pattern is None or not data:
            return data
        return self._pattern.sub(lambda match: self._markers[match.group()], data)
