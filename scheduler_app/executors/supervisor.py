"""The supervisor of one command run: a small process between the scheduler and the command.

The command executor (command.py) starts it as `python -I -S supervisor.py EVENTS_FD` for every
command run. It imports nothing but the standard library (so it starts in a few milliseconds and
holds nothing of the scheduler), and:

- makes itself not dumpable first, then reads the launch spec (argv, environment, user) as the
  first JSON line of its stdin: the run's environment is never in any process's argv or environ
  that another user could read;
- becomes a child subreaper (Linux), so every process the command starts stays its descendant,
  also one that calls setsid() or double-forks: an orphan is reparented to the supervisor, not init;
- starts the command in its own session, as the command user when one is given (setgroups, setgid,
  setuid through subprocess, then no-new-privileges, parent-death signal and the work_dir, entered
  with the command user's rights), with stdin from /dev/null and the supervisor's stdout, stderr and
  the progress pipe;
- obeys JSON lines on stdin: pause (SIGSTOP to every descendant, answered when all are stopped),
  resume (SIGCONT), stop (SIGTERM to every descendant, SIGKILL to all after the grace), kill; the end
  of stdin (the scheduler closed it, or died) means kill;
- when the command exits, kills whatever it left behind, reaps everything, then reports the
  command's exit code (negative: killed by that signal) and exits. Events go to EVENTS_FD as JSON
  lines: started, paused, resumed, exit, error.

The command leads its own process group for its whole life: its zombie is reaped only once nothing
else of the run is left, so its group id stays this run's and may be signalled from outside (the
scheduler's pause fast path, the orphan check's SIGKILL, after which the supervisor ends the rest).

This module is also the one home of the prctl(2) calls (make_process_nondumpable is used by the
scheduler and Celery worker processes too, through executors/sandbox.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections import defaultdict
from typing import Any, NamedTuple

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38

EXIT_CANNOT_START = 126  # as a shell reports a command it found but could not run
DEFAULT_STOP_GRACE = 3.0
FREEZE_SECONDS = 2.0  # a process stuck in the kernel (state D) may not stop sooner
KILL_SECONDS = 10.0  # then processes that would not die are reported and left
IDLE_WAIT = 1.0
BUSY_WAIT = 0.01
STOPPED_STATES = (b"T", b"t")
DEAD_STATES = (b"Z", b"X", b"x")


def prctl(option: int, value: int) -> bool:
    """Call prctl(2); False where it does not exist (not Linux) or refuses."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def make_process_nondumpable() -> bool:
    """Make this process not dumpable: a process of the same user (not root) cannot read its
    memory, environment or open files through /proc nor ptrace it. False where unsupported."""
    return prctl(PR_SET_DUMPABLE, 0)


class Proc(NamedTuple):
    pid: int
    ppid: int
    state: bytes
    start: int  # start time in clock ticks since boot: a pid with another start is another process


def _read_stat(pid: int) -> Proc | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            stat = file.read()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2 :].split()
    return Proc(pid, int(fields[1]), fields[0], int(fields[19]))


def descendants(root: int) -> list[Proc]:
    """Every process below `root` (zombies included), read from /proc; empty where there is none."""
    children: dict[int, list[Proc]] = defaultdict(list)
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for name in entries:
        if name.isdigit() and (proc := _read_stat(int(name))) is not None:
            children[proc.ppid].append(proc)
    found: list[Proc] = []
    stack = [root]
    while stack:
        for proc in children.pop(stack.pop(), ()):
            found.append(proc)
            stack.append(proc.pid)
    return found


def send(proc: Proc, signum: int) -> None:
    """Signal `proc` only if its pid still names the same process (a pidfd pins it; no pid reuse)."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except ProcessLookupError:
        return
    except (AttributeError, OSError):  # no pidfd (old kernel, not Linux): the small race remains
        current = _read_stat(proc.pid)
        if current is not None and current.start == proc.start:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(proc.pid, signum)
        return
    try:
        current = _read_stat(proc.pid)
        if current is not None and current.start == proc.start:
            signal.pidfd_send_signal(pidfd, signum)
    except (ProcessLookupError, PermissionError):
        pass
    finally:
        os.close(pidfd)


def _enter_child(work_dir: str, supervisor_pid: int) -> None:
    """Runs in the forked child after setgroups/setgid/setuid, just before exec (this process has
    one thread, so running Python here is safe). subprocess's own cwd would be entered with the
    supervisor's rights; entering it here makes a work_dir the command user cannot use an error."""
    prctl(PR_SET_NO_NEW_PRIVS, 1)  # setuid programs (sudo, su) cannot give the command more rights
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # should the supervisor itself be killed
    if os.getppid() != supervisor_pid:  # it died before the line above
        os._exit(EXIT_CANNOT_START)
    try:
        os.chdir(work_dir)
    except OSError as error:
        os.write(2, f"cannot enter the work_dir {work_dir}: {error.strerror}\n".encode())
        os._exit(EXIT_CANNOT_START)


class Supervisor:
    def __init__(self, spec: dict[str, Any], *, events_fd: int, control_fd: int) -> None:
        self.spec = spec
        self.events_fd = events_fd
        self.control_fd = control_fd
        self.pid = os.getpid()
        self.child: subprocess.Popen | None = None
        self.leader: int | None = None  # the command's pid (and process group)
        self.exit_code: int | None = None
        self.stop_deadline: float | None = None
        self.killing = False
        self.sigterm = False
        self.child_changed = False  # SIGCHLD arrived: an orphan may wait to be reaped
        self.control_buffer = b""
        self.wakeup_read, wakeup_write = os.pipe()
        os.set_blocking(self.wakeup_read, False)
        os.set_blocking(wakeup_write, False)
        signal.set_wakeup_fd(wakeup_write)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # wakes select() through the pipe
        signal.signal(signal.SIGTERM, self._on_sigterm)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    # ------------------------------------------------------------------ events and control

    def emit(self, event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, **fields}) + "\n"
        with contextlib.suppress(OSError):  # the scheduler is gone: nobody to tell
            os.write(self.events_fd, line.encode())

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self.sigterm = True  # handled by the main loop (woken through the wakeup pipe)

    def _read_control(self) -> None:
        """Handle the requests waiting on stdin; its end (closed, or the scheduler died) means kill."""
        try:
            chunk = os.read(self.control_fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.killing = True
            return
        self.control_buffer += chunk
        self.handle_buffered()

    def handle_buffered(self) -> None:
        *lines, self.control_buffer = self.control_buffer.split(b"\n")
        for line in lines:
            with contextlib.suppress(ValueError):
                request = json.loads(line)
                if isinstance(request, dict):
                    self._handle(request)

    def _handle(self, request: dict[str, Any]) -> None:
        action = request.get("action")
        if action == "pause":
            self.freeze()
            self.emit("paused")
        elif action == "resume":
            self.signal_all(signal.SIGCONT)
            self.emit("resumed")
        elif action == "stop":
            self.begin_stop(float(request.get("grace", DEFAULT_STOP_GRACE)))
        elif action == "kill":
            self.killing = True

    def begin_stop(self, grace: float) -> None:
        if self.stop_deadline is None:
            self.stop_deadline = time.monotonic() + grace
            self.terminate_all()

    def _wait(self, timeout: float) -> None:
        readable, _, _ = select.select([self.control_fd, self.wakeup_read], [], [], timeout)
        if self.wakeup_read in readable:
            self._drain_wakeup()
        if self.control_fd in readable:
            self._read_control()
        if self.sigterm:
            self.begin_stop(DEFAULT_STOP_GRACE)

    def _drain_wakeup(self) -> None:
        self.child_changed = True
        with contextlib.suppress(BlockingIOError):
            while os.read(self.wakeup_read, 4096):
                pass

    # ------------------------------------------------------------------ the process tree

    def live_descendants(self) -> list[Proc]:
        return [proc for proc in descendants(self.pid) if proc.state not in DEAD_STATES]

    def signal_group(self, signum: int) -> None:
        # The leader is never reaped before the end, so its group id cannot name anyone else.
        if self.leader is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.leader, signum)

    def signal_all(self, signum: int) -> None:
        self.signal_group(signum)
        for proc in self.live_descendants():
            send(proc, signum)

    def terminate_all(self) -> None:
        self.signal_all(signal.SIGTERM)
        self.signal_all(signal.SIGCONT)  # a stopped process must run to see its SIGTERM

    def freeze(self) -> None:
        """SIGSTOP until every live descendant is stopped: a stopped process cannot fork, so
        rescanning until all are stopped also catches children forked meanwhile."""
        deadline = time.monotonic() + FREEZE_SECONDS
        self.signal_group(signal.SIGSTOP)
        while time.monotonic() < deadline:
            running = [proc for proc in self.live_descendants() if proc.state not in STOPPED_STATES]
            if not running:
                return
            for proc in running:
                send(proc, signal.SIGSTOP)
            time.sleep(0.002)

    def leader_exited(self) -> bool:
        """Whether the command exited, without reaping it (WNOWAIT: its group id stays reserved)."""
        if self.leader is None:
            return True
        try:
            return os.waitid(os.P_PID, self.leader, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def reap_orphans(self) -> None:
        """Reap zombie children other than the leader (orphans reparented to this subreaper)."""
        for proc in descendants(self.pid):
            if proc.ppid == self.pid and proc.pid != self.leader and proc.state in DEAD_STATES:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(proc.pid, os.WNOHANG)

    def kill_everything(self) -> list[int]:
        """SIGKILL every descendant until none is alive, then reap all; returns pids that would not die."""
        deadline = time.monotonic() + KILL_SECONDS
        while True:
            self.signal_group(signal.SIGKILL)
            alive = self.live_descendants()
            for proc in alive:
                send(proc, signal.SIGKILL)
            self.reap_orphans()
            if not alive or time.monotonic() > deadline:
                break
            self._wait_children(BUSY_WAIT)
        if self.leader is not None and self.leader_exited():
            with contextlib.suppress(ChildProcessError):
                _, status = os.waitpid(self.leader, 0)
                self.exit_code = os.waitstatus_to_exitcode(status)
        while True:  # every zombie left is a child of this process by now
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        return [proc.pid for proc in alive]

    def _wait_children(self, timeout: float) -> None:
        select.select([self.wakeup_read], [], [], timeout)
        self._drain_wakeup()

    # ------------------------------------------------------------------ the run

    def start(self) -> None:
        spec = self.spec
        identity = {}
        if spec.get("user") is not None:
            identity = {"user": spec["user"], "group": spec["group"], "extra_groups": spec["groups"]}
        child = subprocess.Popen(
            spec["argv"],
            executable=spec["executable"],
            env=spec["env"],
            stdin=subprocess.DEVNULL,
            pass_fds=tuple(spec["pass_fds"]),
            start_new_session=True,
            preexec_fn=lambda: _enter_child(spec["work_dir"], self.pid),
            **identity,
        )
        self.child = child  # kept: this process reaps the leader itself, at the very end
        self.leader = child.pid
        for fd in spec["pass_fds"]:  # the command holds them now; their end must be the command's
            with contextlib.suppress(OSError):
                os.close(fd)

    def run(self) -> int:
        try:
            self.start()
        except (OSError, subprocess.SubprocessError) as error:
            self.emit("error", message=str(error))
            return 0
        self.emit("started", pid=self.leader)
        while not self.killing and not self.leader_exited():
            now = time.monotonic()
            if self.stop_deadline is not None and now >= self.stop_deadline:
                break
            if self.child_changed:
                self.child_changed = False
                self.reap_orphans()
            self._wait(IDLE_WAIT if self.stop_deadline is None else self.stop_deadline - now)
        left = self.kill_everything()
        self.emit("exit", code=self.exit_code, left=left)
        return 0


def main(argv: list[str]) -> int:
    make_process_nondumpable()  # before the spec (and the run's environment in it) is read
    events_fd = int(argv[1])
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    received = b""
    while b"\n" not in received:
        chunk = os.read(0, 65536)
        if not chunk:
            return 1  # the scheduler went away before sending the spec
        received += chunk
    line, _, rest = received.partition(b"\n")
    supervisor = Supervisor(json.loads(line), events_fd=events_fd, control_fd=0)
    os.set_blocking(0, False)
    supervisor.control_buffer = rest
    supervisor.handle_buffered()
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
