"""The one error a user's mistake raises, and the parser that says argparse's own refusals the same way:
one line naming the option, exit code 2; how a command is stopped, and the exit codes it then ends with."""

from __future__ import annotations

import argparse
from typing import NoReturn


class UsageError(ValueError):
    """Bad input: which field, what was wrong and what is allowed. The CLI exits 2 on it."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


class OneLineParser(argparse.ArgumentParser):
    """argparse's own refusals (a value not among the choices, not a number, an unknown option) as one
    line naming the option, like every other bad input: `PROG: error: --option: ...`, exit 2 (argparse
    would print its usage first). Subcommand parsers are of this class too (add_subparsers makes them of
    the parent's)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message.removeprefix('argument ')}\n")


# 128 + the signal, as a shell reports a command a signal stopped (docs/cli.md, "Exit codes").
INTERRUPTED = 130  # Ctrl-C: SIGINT
TERMINATED = 143  # SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM (trainboard.stopping): the command stops as on Ctrl-C, exit code TERMINATED."""


def stopped_code(stop: KeyboardInterrupt) -> int:
    """The exit code of a command ``stop`` stopped: TERMINATED for SIGTERM, else INTERRUPTED."""
    return TERMINATED if isinstance(stop, Terminated) else INTERRUPTED


def stopped_by(stop: KeyboardInterrupt) -> str:
    return "stopped (SIGTERM)" if isinstance(stop, Terminated) else "interrupted"
