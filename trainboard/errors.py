"""The one error a user's mistake raises, and the parser that says argparse's own refusals the same way:
one line naming the option, exit code 2."""

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
