"""The shape of the code: only runtime/transitions.py writes an execution's status, and imports only
point down the layers (the import-linter contracts in pyproject.toml)."""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
APP = ROOT / "scheduler_app"
STATUS_WRITER = APP / "runtime" / "transitions.py"
# ORM writes, and the context's own conditional UPDATE helper.
WRITE_CALLS = {"update", "create", "bulk_create", "get_or_create", "update_or_create", "_update"}
STATUS_FIELDS = {"status", "start_time", "end_time", "is_paused", "terminate_requested"}


def _status_writes(path: Path) -> list[str]:
    """Places in a module that write a lifecycle field: a keyword (or a key of a dict literal handed
    over) of an ORM write or of the TaskExecution constructor, a field list of save()/bulk_update(),
    or an assignment to the attribute."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in WRITE_CALLS or name == "TaskExecution":
                found += [f"{path}:{node.lineno} {name}({kw.arg}=…)" for kw in node.keywords if kw.arg in STATUS_FIELDS]
                handed = [arg for arg in [*node.args, *(kw.value for kw in node.keywords)] if isinstance(arg, ast.Dict)]
                keys = [key.value for arg in handed for key in arg.keys if isinstance(key, ast.Constant)]
                found += [f"{path}:{node.lineno} {name}({{{key!r}: …}})" for key in keys if key in STATUS_FIELDS]
            if name in ("save", "bulk_update"):
                listed = [
                    elt.value
                    for arg in [*node.args, *(kw.value for kw in node.keywords)]
                    if isinstance(arg, ast.List | ast.Tuple)
                    for elt in arg.elts
                    if isinstance(elt, ast.Constant)
                ]
                found += [f"{path}:{node.lineno} {name}([{field!r}])" for field in listed if field in STATUS_FIELDS]
        elif isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found += [
                f"{path}:{node.lineno} .{target.attr} = …"
                for target in targets
                if isinstance(target, ast.Attribute) and target.attr in STATUS_FIELDS
            ]
    return found


def test_only_the_transitions_write_an_executions_status():
    offenders = []
    for path in sorted(APP.rglob("*.py")):
        if path == STATUS_WRITER or "migrations" in path.parts:
            continue
        offenders += _status_writes(path)
    assert offenders == []


def test_the_scan_finds_a_status_write(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "TaskExecution.objects.filter(pk=1).update(status='failed')\n"
        "TaskExecution(task_id=1, status='pending').save()\n"
        "execution.status = 'success'\n"
        "row.save(update_fields=['status'])\n"
        "rows.update(**{'terminate_requested': True})\n"
    )
    assert len(_status_writes(sample)) == 5
    assert _status_writes(STATUS_WRITER)  # the one module allowed to


def test_imports_only_point_down_the_layers():
    lint_imports = shutil.which("lint-imports") or str(Path(__import__("sys").executable).parent / "lint-imports")
    if not Path(lint_imports).exists():
        pytest.skip("import-linter is not installed (the dev extra installs it)")
    result = subprocess.run([lint_imports, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
