"""What a command's processes may touch: the user they run as, the environment they may be given,
their private home, and the hardening of the processes that start them.

- Identity: with SCHEDULER_COMMAND_USER (and optionally SCHEDULER_COMMAND_GROUP) the command runs as
  that user, with that user's groups; the supervisor drops root's rights in the child before exec.
  Without it, commands run as the scheduler's own user, which is refused for root unless
  SCHEDULER_ALLOW_ROOT_COMMANDS is true: a root command can read every secret of the machine
  (the scheduler's environment and memory through /proc, the database file, API tokens in it).
- Environment names: POSIX names only, and none of the variables that make the dynamic loader, the
  C library or an interpreter load or run code that the command line did not name (see
  REFUSED_ENV_PREFIXES / REFUSED_ENV_NAMES): with them, an allow-listed program would run anything.
- The scheduler and Celery worker processes make themselves non-dumpable at start
  (harden_scheduler_process), so a process of the same user cannot read their environment or
  memory through /proc.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _

from scheduler_app.conf import scheduler_settings
from scheduler_app.executors.supervisor import make_process_nondumpable

logger = logging.getLogger("scheduler_app.executions")

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # POSIX: letters, digits, underscore; no leading digit
MAX_ENV_NAME = 255

# Set by the scheduler for every run (see command.child_environment); a task cannot replace them.
SCHEDULER_ENV_NAMES = frozenset({"PATH", "HOME", "TMPDIR"})
SCHEDULER_ENV_PREFIX = "ZQUANT_"

# Variables that make a standard loader or interpreter load or run code the command did not name:
# the dynamic loader (LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT, ... and macOS's DYLD_*), glibc's
# allocator and tunables (MALLOC_*, GLIBC_TUNABLES), the interpreters commonly allow-listed
# (PYTHONPATH, PYTHONSTARTUP, PYTHONHOME, PYTHONBREAKPOINT, ...; PERL5LIB, PERL5OPT; RUBYOPT,
# RUBYLIB; NODE_OPTIONS, NODE_PATH; the JVM's option variables) and the shells (BASH_ENV and
# exported BASH_FUNC_*).
REFUSED_ENV_PREFIXES = ("LD_", "DYLD_", "MALLOC_", "GLIBC_", "PYTHON", "PERL", "RUBY", "NODE_", "BASH_")
REFUSED_ENV_NAMES = frozenset(
    {
        # glibc ignores these for setuid programs, because each one loads files or code from a
        # path it names (GCONV_PATH: iconv modules; LOCPATH/NLSPATH: locales and catalogs;
        # HOSTALIASES, RESOLV_HOST_CONF, RES_OPTIONS, LOCALDOMAIN: the resolver; ...).
        "GCONV_PATH",
        "GETCONF_DIR",
        "HOSTALIASES",
        "LOCALDOMAIN",
        "LOCPATH",
        "NIS_PATH",
        "NLSPATH",
        "RESOLV_HOST_CONF",
        "RES_OPTIONS",
        "TZDIR",
        # sh / bash run ENV / BASH_ENV at start-up, PS4 with xtrace, and split words on IFS.
        "ENV",
        "IFS",
        "CDPATH",
        "SHELLOPTS",
        "BASHOPTS",
        "PS4",
        "PROMPT_COMMAND",
        # Java agents and class paths; Ruby gem paths.
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
        "CLASSPATH",
        "GEM_HOME",
        "GEM_PATH",
    }
)


def env_name_problem(name: object) -> str | None:
    """Why `name` may not be set by a task's config (`env` or `env_from`), or None when it may."""
    if not isinstance(name, str) or not ENV_NAME.match(name) or len(name) > MAX_ENV_NAME:
        return _("%(name)r is not a valid variable name (letters, digits and _, not starting with a digit).") % {
            "name": name
        }
    if name in SCHEDULER_ENV_NAMES or name.startswith(SCHEDULER_ENV_PREFIX):
        return _("%(name)s is set by the scheduler.") % {"name": name}
    if name in REFUSED_ENV_NAMES or name.startswith(REFUSED_ENV_PREFIXES):
        return _("%(name)s changes which code a program loads or runs, so a task may not set it.") % {"name": name}
    return None


# ---------------------------------------------------------------------- identity


class SandboxError(Exception):
    """The server's settings do not let commands run (shown at `manage.py check` and in the run)."""

    def __init__(self, message: str, *, check_id: str) -> None:
        super().__init__(message)
        self.message = message
        self.check_id = check_id


ROOT_REFUSED = "scheduler_app.E005"
BAD_COMMAND_USER = "scheduler_app.E006"


@dataclass(frozen=True)
class CommandIdentity:
    """The user and groups a command runs as (None of it: the scheduler's own user)."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]


def _lookup_user(value: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwuid(int(value)) if value.isdigit() else pwd.getpwnam(value)
    except (KeyError, OverflowError):
        raise SandboxError(
            _("SCHEDULER_COMMAND_USER %(user)r is not a user of this machine.") % {"user": value},
            check_id=BAD_COMMAND_USER,
        ) from None


def _lookup_group(value: str) -> int:
    try:
        return grp.getgrgid(int(value)).gr_gid if value.isdigit() else grp.getgrnam(value).gr_gid
    except (KeyError, OverflowError):
        raise SandboxError(
            _("SCHEDULER_COMMAND_GROUP %(group)r is not a group of this machine.") % {"group": value},
            check_id=BAD_COMMAND_USER,
        ) from None


def command_identity() -> CommandIdentity | None:
    """Who commands run as: a CommandIdentity to switch to, or None for the scheduler's own user.

    Raises SandboxError when commands may not run with these settings: an unknown user or group,
    another user without the root rights to switch to it, or root without SCHEDULER_ALLOW_ROOT_COMMANDS.
    """
    user, group = scheduler_settings.COMMAND_USER, scheduler_settings.COMMAND_GROUP
    if group and not user:
        raise SandboxError(
            _("SCHEDULER_COMMAND_GROUP is set without SCHEDULER_COMMAND_USER."), check_id=BAD_COMMAND_USER
        )
    identity = None
    if user:
        entry = _lookup_user(user)
        gid = _lookup_group(group) if group else entry.pw_gid
        identity = CommandIdentity(
            name=entry.pw_name, uid=entry.pw_uid, gid=gid, groups=tuple(os.getgrouplist(entry.pw_name, gid))
        )
        if os.geteuid() != 0 and (identity.uid, identity.gid) != (os.geteuid(), os.getegid()):
            raise SandboxError(
                _("Commands cannot run as %(user)s: switching users needs the scheduler to run as root.")
                % {"user": identity.name},
                check_id=BAD_COMMAND_USER,
            )
    runs_as_root = identity.uid == 0 if identity else os.geteuid() == 0
    if runs_as_root and not scheduler_settings.ALLOW_ROOT_COMMANDS:
        raise SandboxError(
            _(
                "Command tasks would run as root, with access to every secret of this machine. Set "
                "SCHEDULER_COMMAND_USER to an unprivileged user (or SCHEDULER_ALLOW_ROOT_COMMANDS=true "
                "to accept it, for a demo)."
            ),
            check_id=ROOT_REFUSED,
        )
    if identity is not None and (identity.uid, identity.gid) == (os.geteuid(), os.getegid()):
        return None  # already that user: nothing to switch
    return identity


def private_home(execution_id: int, identity: CommandIdentity | None) -> str:
    """A new directory (mode 700) for the run's HOME and TMPDIR, owned by the user it runs as."""
    home = tempfile.mkdtemp(prefix=f"zquant-exec-{execution_id}-")
    if identity is not None:
        try:
            os.chown(home, identity.uid, identity.gid)
        except OSError:
            shutil.rmtree(home, ignore_errors=True)
            raise
    return home


def sqlite_files_open_to(identity: CommandIdentity) -> list[str]:
    """The SQLite database files (database, -wal, -shm) that `identity` could read or write."""
    database = settings.DATABASES.get("default", {})
    if database.get("ENGINE") != "django.db.backends.sqlite3":
        return []
    name = str(database.get("NAME") or "")
    exposed = []
    for path in (name, f"{name}-wal", f"{name}-shm"):
        try:
            info = os.stat(path)
        except (OSError, ValueError):
            continue
        owner = info.st_uid == identity.uid
        group = info.st_gid in identity.groups and info.st_mode & (stat.S_IRGRP | stat.S_IWGRP)
        if owner or group or info.st_mode & (stat.S_IROTH | stat.S_IWOTH):
            exposed.append(path)
    return exposed


# ---------------------------------------------------------------------- the scheduler's own process


def harden_scheduler_process() -> bool:
    """Make this process (the scheduler, a Celery worker) not dumpable: a process of the same user
    cannot read its environment (SECRET_KEY, DATABASE_URL, ...) or memory through /proc.

    A no-op with a log line where prctl(2) does not exist. Children do not inherit it across exec:
    the supervisor of each command makes itself non-dumpable in turn.
    """
    if make_process_nondumpable():
        logger.info("process %s is not dumpable: its environment and memory are closed to other processes", os.getpid())
        return True
    logger.info("prctl(PR_SET_DUMPABLE) is not available here: process %s stays dumpable", os.getpid())
    return False
