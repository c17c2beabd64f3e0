"""What every command prints besides its result: progress lines on stderr (stdout stays for results),
errors as one line `trainboard COMMAND: error: ...`, and records readable or, with --json (declared
here once), as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from trainboard.checks import printable

JSON_HELP = (
    "print each record as one line of JSON on stdout instead of readable lines (progress stays on stderr)"
)


def add_json_option(p: argparse.ArgumentParser) -> None:
    """--json on a command that prints records, the same name and words on each (kfp's --output json)."""
    p.add_argument("--json", action="store_true", help=JSON_HELP)


def print_json(record: Any) -> None:
    print(json.dumps(record), flush=True)


def print_fields(fields: Iterable[tuple[str, object]]) -> None:
    """A record a person reads: one `label: value` line a field, the values aligned; a value read from a
    file is shown printable (escaped), never raw."""
    rows = list(fields)
    width = max(len(label) for label, _ in rows) + 1
    for label, value in rows:
        print(f"{label + ':':<{width}} {printable(str(value))}")


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def server_error(command: str, error: Exception | str) -> int:
    """A request the server refused after the input was checked, or a server that stopped answering or
    answered wrongly: one line, the error's exit code (``exit_code``: 1 unless it says otherwise)."""
    print(f"trainboard {command}: error: {printable(str(error))}", file=sys.stderr)
    return int(getattr(error, "exit_code", 1))


def failed_with_log(command: str, message: str, tail: Iterable[str], log: Path | None) -> int:
    """A failure whose output went to ``log``: its last lines (``tail``), indented, then the error naming
    the log; with no log (--verbose) that output is on the terminal already, so the error alone. Exit 1."""
    if log is not None:
        sys.stderr.writelines(f"    {printable(line.rstrip())}\n" for line in tail)  # read from a log
    shown = f"; its last lines are above, the whole log is {log}" if log is not None else ""
    print(f"trainboard {command}: error: {printable(message)}{shown}", file=sys.stderr)
    return 1
