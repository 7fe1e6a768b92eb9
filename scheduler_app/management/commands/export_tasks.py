"""Write the scheduler's configuration (tasks, calendars, blackout windows, subscriptions) as JSON or YAML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError

from scheduler_app.services.transfer import export_document


def is_yaml(path: str) -> bool:
    return Path(path).suffix.lower() in (".yaml", ".yml")


def render(document: Any, *, yaml_format: bool) -> str:
    """The document's text: the same configuration always gives the same text."""
    if yaml_format:
        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


class Command(BaseCommand):
    help = (
        "Export tasks, calendars (weekdays and days), blackout windows and notification subscriptions, by name "
        "(no ids, no secrets), to standard output as JSON or to --output FILE (YAML for .yaml/.yml)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--output", "-o", help="Write to this file (.json, .yaml or .yml) instead of stdout.")
        parser.add_argument("--yaml", action="store_true", help="YAML on standard output.")

    def handle(self, *args, **options) -> None:
        output = options["output"]
        text = render(export_document(), yaml_format=options["yaml"] or (output is not None and is_yaml(output)))
        if output is None:
            self.stdout.write(text, ending="")
            return
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as error:
            raise CommandError(f"cannot write {output}: {error.strerror}") from None
        self.stderr.write(f"exported to {output}")
