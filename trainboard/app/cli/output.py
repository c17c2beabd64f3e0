"""What every command prints besides its result: progress lines on stderr (stdout stays for results)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def server_error(command: str, error: Exception) -> int:
    """A request the server refused after the input was checked: one line, exit code 1."""
    print(f"trainboard {command}: error: {error}", file=sys.stderr)
    return 1


def failed_with_log(command: str, message: str, tail: Iterable[str], log: Path | None) -> int:
    """A failure whose output went to ``log``: its last lines (``tail``), indented, then the error naming
    the log; with no log (--verbose) that output is on the terminal already, so the error alone. Exit 1."""
    if log is not None:
        sys.stderr.writelines(f"    {line.rstrip()}\n" for line in tail)
    shown = f"; its last lines are above, the whole log is {log}" if log is not None else ""
    print(f"trainboard {command}: error: {message}{shown}", file=sys.stderr)
    return 1
