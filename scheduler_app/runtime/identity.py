"""Process identities that survive pid reuse: boot id, pid and the process's start time.

A pid alone names a different process after the original exits (soon on a busy host, certainly
after a reboot). Orphan recovery kills a crashed run's command only when the process recorded for
it still exists: same boot, same pid, same start time (in clock ticks since boot, from
/proc/<pid>/stat). Where /proc is not available the identity is empty, and nothing is ever killed
on its strength.
"""

from __future__ import annotations

from pathlib import Path

PROC = Path("/proc")


def _boot_id() -> str:
    try:
        return (PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> str:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) is in parentheses and may contain spaces; fields after it are plain.
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else ""  # field 22 of the whole line: starttime


def process_identity(pid: int) -> str:
    """`<boot id>:<pid>:<start ticks>` of a running process, or "" when it cannot be told."""
    boot, ticks = _boot_id(), _start_ticks(pid)
    return f"{boot}:{pid}:{ticks}" if boot and ticks else ""


def identity_pid(identity: str) -> int | None:
    """The pid an identity names, or None for an empty or malformed one."""
    parts = identity.split(":")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def identity_is_alive(identity: str) -> bool:
    """True when the very process the identity was taken from still exists on this host."""
    pid = identity_pid(identity)
    return pid is not None and process_identity(pid) == identity
