"""The code blocks of the README that scripts/fresh_project.sh runs, so that the README says what CI does.

A block is taken when the line before its opening fence is a marker:

    <!-- fresh-project: append mysite/settings.py -->     the block is appended to that file
    <!-- fresh-project: replace mysite/urls.py -->        the block replaces that file
    <!-- fresh-project: create reports/scheduler_actions.py -->   the block is a new file
    <!-- fresh-project: commands NAME -->                 shell commands, one a line

    python scripts/readme_snippets.py files README.md PROJECT_DIR     write every file block
    python scripts/readme_snippets.py commands README.md NAME         print that block's commands

Standard library only: it runs with whichever Python the script has at hand.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

MARKER = re.compile(r"^<!-- fresh-project: (append|replace|create|commands) (\S+) -->$")
FENCE = re.compile(r"^```")


def blocks(readme: Path) -> list[tuple[str, str, str]]:
    """(kind, target, text) of every marked block, in README order."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    found = []
    for index, line in enumerate(lines):
        match = MARKER.match(line.strip())
        if not match:
            continue
        if index + 1 >= len(lines) or not FENCE.match(lines[index + 1]):
            raise SystemExit(f"{readme}:{index + 1}: a fresh-project marker must be followed by a code block")
        body = []
        for inner in lines[index + 2 :]:
            if FENCE.match(inner):
                break
            body.append(inner)
        else:
            raise SystemExit(f"{readme}:{index + 2}: the code block is not closed")
        found.append((match[1], match[2], "\n".join(body) + "\n"))
    return found


def write_files(readme: Path, project: Path) -> None:
    """Every file block, each target checked before any is written."""
    plan = [(kind, target, text) for kind, target, text in blocks(readme) if kind != "commands"]
    for kind, target, _text in plan:
        path = project / target
        if kind == "create" and (path.exists() or not path.parent.is_dir()):
            raise SystemExit(f"{path}: the README creates it, in an existing folder")
        if kind in ("append", "replace") and not path.is_file():
            raise SystemExit(f"{path} does not exist; the README changes it")
    for kind, target, text in plan:
        path = project / target
        before = path.read_text(encoding="utf-8") + "\n\n" if kind == "append" else ""
        path.write_text(before + text, encoding="utf-8")
        print(f"README: {kind} {target}")


def commands(readme: Path, name: str) -> list[str]:
    found = [text for kind, target, text in blocks(readme) if kind == "commands" and target == name]
    if len(found) != 1:
        raise SystemExit(f"{readme}: expected one 'commands {name}' block, found {len(found)}")
    return [line.strip() for line in found[0].splitlines() if line.strip() and not line.lstrip().startswith("#")]


def main(argv: list[str]) -> None:
    if len(argv) == 4 and argv[1] == "files":
        write_files(Path(argv[2]), Path(argv[3]))
    elif len(argv) == 4 and argv[1] == "commands":
        print("\n".join(commands(Path(argv[2]), argv[3])))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
