"""What the fields of a champion record (``champion.json``, a history entry) may hold, checked after
json.loads and before anything is built from them: a record a person or a crash damaged is refused, not
trusted (a wrong type, an accuracy of 7, a time of "tomorrow", a run name with an escape sequence).

A loss may be NaN or infinite (a diverged model's loss is recorded as it was measured); test_accuracy and
the p-value, which the gate compares, are fractions. TensorFlow-free."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from trainboard.checks import hidden_characters, is_run_name, printable

REQUIRED = ("run", "model_uri", "metrics", "promoted_at", "reason")  # the first records had only these
ACTIONS = ("promote", "force", "rollback")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_fraction(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1  # NaN: no


def _field_problem(name: str, value: object) -> str | None:
    """What is wrong with the record's field ``name`` as json.loads read it (None: nothing). Text fields
    hold no hidden characters: nothing trainboard writes does (run names and --reason are checked)."""
    if name == "metrics":
        if not (
            isinstance(value, dict) and all(isinstance(k, str) and _is_number(v) for k, v in value.items())
        ):
            return "is not an object of numbers"
        return None if _is_fraction(value.get("test_accuracy")) else "has no test_accuracy in [0, 1]"
    if name == "p_value":
        return None if value is None or _is_fraction(value) else "is not a p-value in [0, 1]"
    if not isinstance(value, str) or hidden_characters(value):
        return "is not text without control characters"
    if name in ("run", "previous") and not (is_run_name(value) or (name == "previous" and not value)):
        return "is not a run name"
    if name == "action" and value not in ACTIONS:
        return f"is not one of {', '.join(ACTIONS)}"
    if name == "promoted_at" and not _is_time(value):
        return "is not an ISO 8601 time"
    return None


def _is_time(text: str) -> bool:
    """An ISO 8601 time (an old record's has no UTC offset: it is UTC)."""
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def record_problem(fields: object, names: Sequence[str]) -> str | None:
    """What is wrong with ``fields`` as a record of the fields ``names`` (None: nothing), for the message."""
    if not isinstance(fields, dict):
        return f"a JSON {type(fields).__name__}, not an object"
    missing = [n for n in REQUIRED if n not in fields]
    unknown = sorted(set(fields) - set(names))
    if missing or unknown:
        return f"missing {missing}, unknown {printable(repr(unknown))}"
    for name, value in fields.items():
        problem = _field_problem(name, value)
        if problem:
            return f"{name} {printable(repr(value))[:80]} {problem}"
    return None
