"""Load an export_tasks file: create what is missing and change what differs, by name, in one transaction."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from scheduler_app.exceptions import SchedulerError
from scheduler_app.management.commands.export_tasks import is_yaml
from scheduler_app.services.permissions import SYSTEM
from scheduler_app.services.transfer import ImportRefused, scheduler_import


class Command(BaseCommand):
    help = (
        "Import an export_tasks file (JSON, or YAML for .yaml/.yml): create or update tasks, calendars, blackout "
        "windows and subscriptions by name, deleting nothing. Prints what changes; --dry-run changes nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="The file export_tasks wrote (.json, .yaml or .yml).")
        parser.add_argument("--dry-run", action="store_true", help="Print what would change; change nothing.")

    def handle(self, *args, **options) -> None:
        path = options["file"]
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from None
        try:
            document = yaml.safe_load(text) if is_yaml(path) else json.loads(text)
        except ValueError as error:  # json.JSONDecodeError
            raise CommandError(f"{path} is not valid JSON: {error}") from None
        except yaml.YAMLError as error:  # its message spans lines
            raise CommandError(f"{path} is not valid YAML: {' '.join(str(error).split())}") from None
        try:
            lines = scheduler_import(document=document, user=SYSTEM, dry_run=options["dry_run"])
        except (ImportRefused, SchedulerError, PermissionDenied, TypeError, ValueError) as error:
            raise CommandError(f"{path}: {' '.join(str(error).split())}; nothing was changed") from None
        for line in lines:
            self.stdout.write(line)
        verb = "would change" if options["dry_run"] else "changed"
        self.stdout.write(f"{len(lines)} {verb}" if lines else "nothing to change")
