"""Declared action parameters: what an action accepts, checked when a config is validated and shown as a schema.

An action lists its parameters (`Param`) in the registry. `validate_config` (executors.registry, the
one validator of the API, the admin, the trigger override and the runner) checks each declared
parameter before the action's own parse function sees the config, and the API's action catalogue
and the admin's action picker render the same declarations as a JSON schema and a form.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.utils.translation import gettext as _

DATE_FORMATS = ("%Y%m%d", "%Y-%m-%d")
DATE_PATTERN = r"^\d{4}-?\d{2}-?\d{2}$"

STRING, INTEGER, NUMBER, BOOLEAN, DATE, CODES = "string", "integer", "number", "boolean", "date", "codes"
TYPES = (STRING, INTEGER, NUMBER, BOOLEAN, DATE, CODES)


def parse_date(value: Any) -> date | None:
    """A date from YYYYMMDD or YYYY-MM-DD (zquant used the first for syncs, the second for factors)."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str):
        for fmt in DATE_FORMATS:
            try:
                return datetime.strptime(value.strip(), fmt).date()  # noqa: DTZ007 - a calendar date
            except ValueError:
                continue
    raise ValueError(value)


def absent(value: Any) -> bool:
    """A parameter left out: missing, null or the empty string (a form's empty field)."""
    return value is None or value == ""


@dataclass(frozen=True)
class Param:
    """One parameter of an action: its config key, type, default, help text, and the values it accepts.

    Types: string, integer, number, boolean, date (YYYYMMDD or YYYY-MM-DD) and codes (a list of
    codes or a comma-separated string).
    """

    name: str
    type: str = STRING
    default: Any = None
    help: str = ""
    required: bool = False
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise TypeError(f"parameter {self.name!r}: unknown type {self.type!r}; known: {', '.join(TYPES)}")

    def errors(self, config: dict[str, Any]) -> list[str]:
        """The problems of this parameter's value in `config` (none when it is absent and optional)."""
        value = config.get(self.name)
        key = self.name
        if absent(value):
            return [_("%(key)s is required.") % {"key": key}] if self.required else []
        problem = self._type_error(value)
        if problem:
            return [problem]
        if self.choices and value not in self.choices:
            known = ", ".join(map(str, self.choices))
            return [_("%(key)s must be one of %(choices)s.") % {"key": key, "choices": known}]
        if self.type in (INTEGER, NUMBER):
            if self.minimum is not None and value < self.minimum:
                return [_("%(key)s must be at least %(min)s.") % {"key": key, "min": self.minimum}]
            if self.maximum is not None and value > self.maximum:
                return [_("%(key)s must be at most %(max)s.") % {"key": key, "max": self.maximum}]
        if self.type == STRING and self.max_length is not None and len(value) > self.max_length:
            return [_("%(key)s is longer than %(max)s characters.") % {"key": key, "max": self.max_length}]
        return []

    def _type_error(self, value: Any) -> str:
        key = {"key": self.name}
        if self.type == INTEGER:
            whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
            if isinstance(value, bool) or not whole:
                return _("%(key)s must be a whole number.") % key
        elif self.type == NUMBER:
            if isinstance(value, bool) or not isinstance(value, int | float):
                return _("%(key)s must be a number.") % key
        elif self.type == BOOLEAN:
            if not isinstance(value, bool):
                return _("%(key)s must be true or false.") % key
        elif self.type == STRING:
            if not isinstance(value, str):
                return _("%(key)s must be text.") % key
        elif self.type == DATE:
            try:
                parse_date(value)
            except ValueError:
                return _("%(key)s must be a date as YYYYMMDD or YYYY-MM-DD, not %(value)r.") % {**key, "value": value}
        elif self.type == CODES:
            listed = isinstance(value, list) and all(isinstance(item, str) for item in value)
            if not (isinstance(value, str) or listed):
                return _("%(key)s must be a list of codes or a comma-separated string.") % key
        return ""

    def json_schema(self) -> dict[str, Any]:
        """This parameter as a JSON schema property (with `default`, `description` and `enum` when set)."""
        schema: dict[str, Any]
        if self.type == DATE:
            schema = {"type": "string", "format": "date", "pattern": DATE_PATTERN}
        elif self.type == CODES:
            schema = {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]}
        else:
            schema = {"type": self.type}
        if self.type in (INTEGER, NUMBER):
            if self.minimum is not None:
                schema["minimum"] = self.minimum
            if self.maximum is not None:
                schema["maximum"] = self.maximum
        if self.max_length is not None:
            schema["maxLength"] = self.max_length
        if self.choices:
            schema["enum"] = list(self.choices)
        if self.default is not None:
            schema["default"] = self.default
        if self.help:
            schema["description"] = str(self.help)
        return schema


def parameters_errors(parameters: tuple[Param, ...], config: dict[str, Any]) -> list[str]:
    return [message for param in parameters for message in param.errors(config)]


def parameters_schema(parameters: tuple[Param, ...], *, const: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON schema of a config with these parameters; `const` pins keys such as `task_action`."""
    properties: dict[str, Any] = {key: {"const": value} for key, value in (const or {}).items()}
    properties.update({param.name: param.json_schema() for param in parameters})
    required = [*(const or {}), *(param.name for param in parameters if param.required)]
    return {"type": "object", "properties": properties, "required": required}
