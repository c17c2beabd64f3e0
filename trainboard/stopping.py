"""How trainboard stops: SIGTERM as Ctrl-C, and a task of `trainboard local` ends with the command that
started it, however the command ends.

SIGTERM (`kill`, `timeout`, a container runtime) reaches the command alone, where Ctrl-C in a terminal
reaches its whole process group: sigterm_as_ctrl_c passes it on to the processes below as SIGINT (each ends
as on Ctrl-C: train sends its last logs) and raises errors.Terminated, a KeyboardInterrupt, so that the
command stops as on Ctrl-C (the lease given back, the resume hint) with its own exit code.

kfp.local runs each task as a subprocess (kfp/local/subprocess_task_handler.py, kfp 2.17.3: ``sh -c`` and
then Python, two levels down). A command killed with SIGKILL runs no code, so nothing it does at its end
can stop them: each task watches it instead. The command names itself in COMMAND_ENV (its pid and start
time, so that a new process given the same pid is not taken for it), which every process below it
inherits; a task, on importing trainboard, checks every POLL_SECONDS that the command is still there and
kills itself when it is not (its own workers follow: components/train/local_workers.py gives them
PR_SET_PDEATHSIG). Why this and not the others (docs/faults.md, "A killed `trainboard local`").
TensorFlow-free; Linux (/proc): elsewhere nothing is watched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from trainboard.errors import Terminated

COMMAND_ENV = "TRAINBOARD_LOCAL_COMMAND"
POLL_SECONDS = 0.5
_watching = threading.Event()


def start_time(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks after boot, /proc/PID/stat's 22nd field), None when
    no such process runs (or it is a zombie: it has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the name, in parentheses, may hold spaces
    return None if fields[0] in ("Z", "X") else fields[19]


def this_command() -> str:
    """COMMAND_ENV's value for this process: its pid and start time."""
    return f"{os.getpid()}:{start_time(os.getpid())}"


def watch_from_environment() -> None:
    """In a process started below a `trainboard local` (COMMAND_ENV set, on Linux): a daemon thread that
    ends this process with SIGKILL once that command is gone. Once per process."""
    command = os.environ.get(COMMAND_ENV, "")
    pid, _, started = command.partition(":")
    if not (pid.isdigit() and started) or sys.platform != "linux" or _watching.is_set():
        return
    if int(pid) == os.getpid():
        return
    _watching.set()

    def watch() -> None:
        while start_time(int(pid)) == started:
            threading.Event().wait(POLL_SECONDS)
        print(
            f"trainboard: the command that started this task (pid {pid}) is gone: stopping", file=sys.stderr
        )
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (its children, theirs, ...), from /proc; [] elsewhere."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # ended meanwhile
            continue
        parent = int(text[text.rindex(")") + 2 :].split()[1])
        parents.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def _terminated(signum, frame) -> None:
    for pid in descendants(os.getpid()):
        with contextlib.suppress(OSError):  # ended meanwhile
            os.kill(pid, signal.SIGINT)
    raise Terminated


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """Meanwhile SIGTERM stops this command as Ctrl-C does, its processes below it included; the handler it
    replaced comes back after (a test or a program that calls the CLI's main keeps its own)."""
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
