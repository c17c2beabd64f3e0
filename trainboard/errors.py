"""The one error a user's mistake raises: the CLI turns it into one line and exit code 2."""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input: which field, what was wrong and what is allowed. The CLI exits 2 on it."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem
