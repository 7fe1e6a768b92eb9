"""Reading action parameters from a task config, collecting every problem (for a 400, not a crash).

The declared parameters (`Param`) are checked before an action's parse function runs; the reader
converts them and adds the checks a declaration cannot state (one date before another).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.utils.translation import gettext as _

from scheduler_app.exceptions import ConfigError
from scheduler_app.executors.parameters import parse_date


class ConfigReader:
    """Typed getters over a config dict; each problem is collected, `raise_if_errors` reports all."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config if isinstance(config, dict) else {}
        self.errors: list[str] = []

    def error(self, message: str) -> None:
        self.errors.append(message)

    def raise_if_errors(self) -> None:
        if self.errors:
            raise ConfigError(self.errors)

    def _present(self, key: str) -> bool:
        return self.config.get(key) not in (None, "")

    def number(self, key: str, *, default: float, minimum: float | None = None, maximum: float | None = None) -> float:
        if not self._present(key):
            return default
        value = self.config[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(_("%(key)s must be a number.") % {"key": key})
            return default
        return self._bounded(key, float(value), minimum, maximum, default)

    def integer(self, key: str, *, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
        if not self._present(key):
            return default
        value = self.config[key]
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(_("%(key)s must be a whole number.") % {"key": key})
            return default
        return int(self._bounded(key, value, minimum, maximum, default))

    def _bounded(self, key: str, value: float, minimum: float | None, maximum: float | None, default: float) -> float:
        if minimum is not None and value < minimum:
            self.error(_("%(key)s must be at least %(min)s.") % {"key": key, "min": minimum})
            return default
        if maximum is not None and value > maximum:
            self.error(_("%(key)s must be at most %(max)s.") % {"key": key, "max": maximum})
            return default
        return value

    def text(self, key: str, *, default: str = "", required: bool = False, max_length: int = 1000) -> str:
        if not self._present(key):
            if required:
                self.error(_("%(key)s is required.") % {"key": key})
            return default
        value = self.config[key]
        if not isinstance(value, str):
            self.error(_("%(key)s must be text.") % {"key": key})
            return default
        if len(value) > max_length:
            self.error(_("%(key)s is longer than %(max)s characters.") % {"key": key, "max": max_length})
        return value.strip()

    def date(self, key: str) -> date | None:
        try:
            return parse_date(self.config.get(key))
        except ValueError:
            self.error(
                _("%(key)s must be a date as YYYYMMDD or YYYY-MM-DD, not %(value)r.")
                % {"key": key, "value": self.config.get(key)}
            )
            return None

    def date_range(self, start_key: str = "start_date", end_key: str = "end_date") -> tuple[date | None, date | None]:
        start, end = self.date(start_key), self.date(end_key)
        if start and end and start > end:
            self.error(_("%(start)s is after %(end)s.") % {"start": start_key, "end": end_key})
        return start, end

    def codes(self, key: str) -> list[str] | None:
        """A list of stock codes from a list or a comma-separated string; None when absent."""
        if not self._present(key):
            return None
        value = self.config[key]
        if isinstance(value, str):
            items = [item.strip() for item in value.split(",")]
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            items = [item.strip() for item in value]
        else:
            self.error(_("%(key)s must be a list of codes or a comma-separated string.") % {"key": key})
            return None
        items = [item.upper() for item in items if item]
        return sorted(dict.fromkeys(items)) or None
