"""Which runs the board's mirror keeps on its volume: the latest N, every one ever promoted, and what fits
a byte budget. "Latest" is by each run's own start time, whatever the run is named."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

# A run's folder is named as check_run_name allows: a letter or a digit first. A folder named otherwise
# (``_trend``) is not a run: always kept, never counted as one.
_RUN_FOLDER = re.compile(r"[A-Za-z0-9]")
# TensorFlow (and every TensorBoard writer) names an event file ``events.out.tfevents.<Unix time>...``
# after the time its writer was made, so a run's earliest one is when it started. Object times are not:
# each append composes a new generation (a new ``updated``), and a copy of the bucket renews them all.
_EVENT_TIME = re.compile(r"(?:^|/)events\.out\.tfevents\.(\d+)")


def is_run(folder: str) -> bool:
    return bool(_RUN_FOLDER.match(folder))


def run_starts(names: Iterable[str]) -> dict[str, float]:
    """{top folder: when its run started} of the files ``names`` (relative to the runs' parent): the
    earliest time in its event files' names; 0 (the oldest) for a folder without any, which TensorBoard
    would show nothing of."""
    starts: dict[str, float] = {}
    for name in names:
        run, _, below = name.partition("/")
        if below:
            found = _EVENT_TIME.search(below)
            starts[run] = min(starts.get(run, math.inf), float(found.group(1)) if found else math.inf)
    return {run: 0.0 if start == math.inf else start for run, start in starts.items()}


def _oldest_first(runs: Iterable[str], starts: Mapping[str, float]) -> list[str]:
    """By start time; runs that started in the same second (or whose start is not known) by name."""
    return sorted(runs, key=lambda run: (starts.get(run, 0.0), run))


def retained_runs(
    runs: set[str], keep: int, promoted: set[str], starts: Mapping[str, float] | None = None
) -> set[str]:
    """The folders a retention of ``keep`` runs mirrors: the ``keep`` latest runs (by ``starts``, see
    run_starts), every run in ``promoted`` (ever champion: it has a ``models/<run>/``), and every folder
    that is not a run. ``keep`` 0 keeps everything."""
    if keep <= 0:
        return set(runs)
    named = _oldest_first({r for r in runs if is_run(r)}, starts or {})
    return (runs - set(named)) | set(named[-keep:]) | (set(named) & promoted)


def runs_within(
    sizes: dict[str, int], budget: int, promoted: set[str], starts: Mapping[str, float]
) -> set[str]:
    """The runs of ``sizes`` ({run: bytes}) that fit in ``budget`` bytes, taken in order: the latest
    promoted run (the champion, unless rolled back), then the others newest first (by ``starts``); one
    that does not fit is skipped and the older ones are still tried."""
    order = _oldest_first(sizes, starts)[::-1]
    champion = next((run for run in order if run in promoted), None)
    if champion is not None:
        order.remove(champion)
        order.insert(0, champion)
    fitted, used = set(), 0
    for run in order:
        if used + sizes[run] <= budget:
            fitted.add(run)
            used += sizes[run]
    return fitted
