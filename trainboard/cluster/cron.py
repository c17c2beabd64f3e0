"""Cron expressions as the KFP scheduler reads them (robfig/cron with a seconds field)."""

from __future__ import annotations

import re

from trainboard.errors import UsageError

# robfig/cron (what the KFP scheduler uses) with seconds: six fields, seconds first.
CRON_FORMAT = (
    "KFP cron has 6 fields: second minute hour day-of-month month day-of-week, "
    "e.g. '0 0 3 * * *' for 03:00 UTC every day"
)
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
_CRON_FIELDS = (  # name, lowest, highest, names of the values from lowest on
    ("second", 0, 59, []),
    ("minute", 0, 59, []),
    ("hour", 0, 23, []),
    ("day-of-month", 1, 31, []),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 6, _DAYS),
)
_CRON_ITEM_RE = re.compile(r"^(?:(\*|\?)|(\w+)(?:-(\w+))?)(?:/(\d+))?$")


def _cron_item_ok(item: str, low: int, high: int, names: list[str]) -> bool:
    match = _CRON_ITEM_RE.match(item)
    if not match:
        return False
    wildcard, first, last, step = match.groups()
    if step is not None and int(step) == 0:
        return False
    if wildcard:
        return True
    values = []
    for token in (first, last):
        if token is None:
            continue
        if token.isdigit():
            values.append(int(token))
        elif token.upper() in names:
            values.append(low + names.index(token.upper()))
        else:
            return False
    return all(low <= v <= high for v in values) and values == sorted(values)


def check_cron(expression: str) -> str:
    fields = expression.split()
    if len(fields) != len(_CRON_FIELDS):
        raise UsageError("cron", f"{expression!r} has {len(fields)} fields; {CRON_FORMAT}")
    for text, (name, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        if not all(_cron_item_ok(item, low, high, names) for item in text.split(",")):
            raise UsageError(
                "cron",
                f"{name} {text!r} in {expression!r} is not valid: use *, ?, N, N-M, */S or lists of them "
                f"with N in {low}-{high}; {CRON_FORMAT}",
            )
    return " ".join(fields)
