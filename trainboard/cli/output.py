"""What every command prints besides its result: progress lines on stderr (stdout stays for results)."""

from __future__ import annotations

import sys


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def server_error(command: str, error: Exception) -> int:
    """A request the server refused after the input was checked: one line, exit code 1."""
    print(f"trainboard {command}: error: {error}", file=sys.stderr)
    return 1
