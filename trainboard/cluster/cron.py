"""Cron expressions as the KFP scheduler reads them: github.com/robfig/cron v1.2.0's cron.Parse (the
version in kubeflow/pipelines' go.mod; backend/src/apiserver/server/api_converter.go validates with it and
the ScheduledWorkflow controller schedules with it, in UTC). Its parser takes six fields, seconds first,
with the day of week optional (so five fields are second..month, not standard cron's minute..weekday),
and the descriptors @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly and @every <Go
duration>."""

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
DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
# time.ParseDuration: a sequence of decimal numbers with units (1h30m, 90s, 1.5h).
_GO_DURATION_RE = re.compile(r"^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$")


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
    """``expression`` normalised, or UsageError. A five-field expression, which robfig/cron accepts as
    second..month while a reader means standard cron's minute..weekday, is refused with its six-field
    spelling."""
    fields = expression.split()
    if fields and fields[0].startswith("@"):
        if fields[0] == "@every" and len(fields) == 2 and _GO_DURATION_RE.match(fields[1]):
            return " ".join(fields)
        if len(fields) == 1 and fields[0] in DESCRIPTORS:
            return fields[0]
        raise UsageError(
            "cron",
            f"{expression!r} is not a descriptor KFP knows: {', '.join(DESCRIPTORS)}, or @every DURATION "
            "(e.g. @every 6h, @every 1h30m)",
        )
    if len(fields) == 5:
        raise UsageError(
            "cron",
            f"{expression!r} has 5 fields: KFP reads them as second minute hour day-of-month month (it "
            f"would run at second {fields[0]} of minute {fields[1]}, not at minute {fields[0]} of hour "
            f"{fields[1]}); for standard cron's meaning write '0 {expression.strip()}' (6 fields: second "
            "minute hour day-of-month month day-of-week)",
        )
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
