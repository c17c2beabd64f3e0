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
# name, lowest, highest, names of the values from lowest on
_CRON_FIELDS: tuple[tuple[str, int, int, list[str]], ...] = (
    ("second", 0, 59, []),
    ("minute", 0, 59, []),
    ("hour", 0, 23, []),
    ("day-of-month", 1, 31, []),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 6, _DAYS),
)
_CRON_ITEM_RE = re.compile(r"^(?:(\*|\?)|(\w+)(?:-(\w+))?)(?:/(\d+))?$")
DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
# time.ParseDuration's units (unitMap in Go's src/time/format.go): a microsecond is "us", "\u00b5s" (the
# micro sign) or "\u03bcs" (the Greek letter mu). In this order, "ms" is tried before "m" and "s".
_GO_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,
    "\u03bcs": 1e-6,
    "ms": 1e-3,
    "s": 1,
    "m": 60,
    "h": 3600,
}
_GO_UNITS = "|".join(_GO_UNIT_SECONDS)
# time.ParseDuration: an optional sign and decimal numbers with units (1h30m, 90s, 1.5h), or a bare 0.
_GO_DURATION_RE = re.compile(rf"^[+-]?(?:0|(?:\d+(?:\.\d+)?(?:{_GO_UNITS}))+)$")
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February 29 comes every leap year
# The shortest time between two firings: a run is six pods one after another (start-run, prepare-data,
# train, evaluate, promote, notify), each scheduled, its image pulled and started, before any training, so
# no run takes less; a schedule firing more often runs back to back for ever (max concurrency 1 queues
# each behind the last; more, and several runs race for one champion). docs/cli.md states it.
MIN_INTERVAL_SECONDS = 15 * 60
# The longest @every: a year. robfig/cron's Every counts from the moment the scheduler reads the schedule
# (Next is the time given plus the interval), so a pause, resume or --replace restarts the count: an
# interval of years may never fire in the life of a deployment. A yearly job is @yearly or a date.
MAX_EVERY_SECONDS = 366 * 24 * 3600


def _cron_item_values(item: str, low: int, high: int, names: list[str]) -> set[int]:
    """The values one comma-separated item of a field stands for (empty: not valid there). As robfig/cron
    reads it: * and ? are every value, N/S is N-high/S."""
    match = _CRON_ITEM_RE.match(item)
    if not match:
        return set()
    wildcard, first, last, step = match.groups()
    if step is not None and int(step) == 0:
        return set()
    if wildcard:
        return set(range(low, high + 1, int(step or 1)))
    values = []
    for token in (first, last):
        if token is None:
            continue
        if token.isdigit():
            values.append(int(token))
        elif token.upper() in names:
            values.append(low + names.index(token.upper()))
        else:
            return set()
    if not all(low <= v <= high for v in values) or values != sorted(values):
        return set()
    end = values[-1] if last is not None or step is None else high
    return set(range(values[0], end + 1, int(step or 1)))


def _check_every(expression: str, duration: str) -> str:
    """``@every DURATION`` when it is a positive Go duration of at least a second: robfig/cron's Every
    runs anything shorter, 0 and negative durations included, every second."""
    if not _GO_DURATION_RE.match(duration):
        raise UsageError(
            "cron",
            f"{expression!r}: @every DURATION takes a Go duration such as 6h, 1h30m or 90s (no days), "
            f"not {duration!r}",
        )
    sign = -1 if duration.startswith("-") else 1
    parts = re.findall(rf"(\d+(?:\.\d+)?)({_GO_UNITS})", duration)
    seconds = sign * sum(float(n) * _GO_UNIT_SECONDS[unit] for n, unit in parts)
    if seconds < 1:
        raise UsageError(
            "cron",
            f"{expression!r}: the interval must be 1s or more (the scheduler would start a run every "
            "second); e.g. @every 6h",
        )
    if seconds < MIN_INTERVAL_SECONDS:
        _too_often(expression, seconds)
    if seconds > MAX_EVERY_SECONDS:
        raise UsageError(
            "cron",
            f"{expression!r}: an interval of {seconds / 86400:.0f} days may never fire: the count restarts "
            f"whenever the schedule is paused, resumed or replaced; @every takes at most 8784h (366 days). "
            "For a yearly run use @yearly or a date, e.g. '0 0 3 1 1 *'",
        )
    return f"@every {duration}"


def _too_often(expression: str, seconds: float, example: str = "") -> None:
    raise UsageError(
        "cron",
        f"{expression!r} starts runs {_duration(seconds)} apart{example}: under the "
        f"{_duration(MIN_INTERVAL_SECONDS)} a run takes at the least (six pods one after another), so they "
        "would run back to back; leave 15 min or more between firings, e.g. '0 */15 * * * *' or @hourly",
    )


def _duration(seconds: float) -> str:
    whole = round(seconds)
    return (
        f"{whole // 60} min" + (f" {whole % 60} s" if whole % 60 else "") if whole >= 60 else f"{seconds:g} s"
    )


def _check_day_exists(expression: str, fields: list[str]) -> None:
    """Refuses days of the month that no month in the expression has (0 0 3 31 2 *: February 31): such
    a schedule never runs. Only with a day-of-week of * or ?: robfig/cron runs a schedule that
    restricts both on either."""
    if fields[5] not in ("*", "?"):
        return
    days, months = (
        set().union(*(_cron_item_values(item, *_CRON_FIELDS[i][1:]) for item in fields[i].split(",")))
        for i in (3, 4)
    )
    if not any(day <= _DAYS_IN_MONTH[month - 1] for day in days for month in months):
        raise UsageError(
            "cron",
            f"{expression!r} never runs: no month in {fields[4]!r} has a day {fields[3]!r} (day-of-month "
            "is the 4th field, month the 5th)",
        )


def check_cron(expression: str) -> str:
    """``expression`` normalised, or UsageError. A five-field expression, which robfig/cron accepts as
    second..month while a reader means standard cron's minute..weekday, is refused with its six-field
    spelling."""
    fields = expression.split()
    if fields and fields[0].startswith("@"):
        if fields[0] == "@every" and len(fields) == 2:
            return _check_every(expression, fields[1])
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
        if not all(_cron_item_values(item, low, high, names) for item in text.split(",")):
            raise UsageError(
                "cron",
                f"{name} {text!r} in {expression!r} is not valid: use *, ?, N, N-M, */S or lists of them "
                f"with N in {low}-{high}; {CRON_FORMAT}",
            )
        for item in text.split(","):
            _check_step(expression, name, item, _cron_item_values(item, low, high, names))
    _check_day_exists(expression, fields)
    _check_interval(expression, fields)
    return " ".join(fields)


def _check_step(expression: str, name: str, item: str, values: set[int]) -> None:
    """Refuses a step that reaches past its field's range (*/90 in minutes is minute 0 alone: hourly,
    not every 90 minutes): robfig/cron takes it, and steps only within one field."""
    step = int(item.rsplit("/", 1)[1]) if "/" in item else 1
    if step > 1 and len(values) == 1:
        raise UsageError(
            "cron",
            f"{name} {item!r} in {expression!r}: a step of {step} reaches past the {name}'s range, so it "
            f"is {name} {min(values)} alone (a step does not carry into the next field: */90 in minutes "
            "is hourly); write the times, e.g. '0 0 */2 * * *' for every 2 hours",
        )


def _field_values(fields: list[str], i: int) -> list[int]:
    _, low, high, names = _CRON_FIELDS[i]
    return sorted(set().union(*(_cron_item_values(item, low, high, names) for item in fields[i].split(","))))


def _check_interval(expression: str, fields: list[str]) -> None:
    """Refuses firings closer than MIN_INTERVAL_SECONDS within a day, and across midnight where the
    schedule fires every day."""
    seconds, minutes, hours = (_field_values(fields, i) for i in range(3))
    times = sorted(h * 3600 + m * 60 + s for h in hours for m in minutes for s in seconds)
    every_day = all(
        len(_field_values(fields, i)) == hi - lo + 1 for i, (_, lo, hi, _) in enumerate(_CRON_FIELDS[3:], 3)
    )
    after = times[1:] + ([times[0] + 86400] if every_day else [])
    gap, at = min(((b - a, a) for a, b in zip(times, after, strict=False)), default=(86400, 0))
    if gap < MIN_INTERVAL_SECONDS:
        first, second = (f"{t // 3600 % 24:02d}:{t // 60 % 60:02d}:{t % 60:02d}" for t in (at, at + gap))
        _too_often(expression, gap, f" ({first} and {second} UTC)")
