"""Fault injection for the tests: pause a process at a named point, for the test to kill it there."""

from __future__ import annotations

import os
import sys
import time

FAULT_PAUSE_ENV = "TRAINBOARD_FAULT_PAUSE"


def fault_pause(point: str) -> None:
    """Fault injection for the tests: with TRAINBOARD_FAULT_PAUSE=POINT[:N], the Nth time (default 1)
    execution reaches ``point`` it says so on stderr and sleeps, for the test to kill the process there.
    Points: ``checkpoint`` (uploaded, not yet committed), ``upload`` (log tail uploaded, not yet composed),
    ``model_copy`` (a file of ``models/<run>/`` uploaded, before the record), ``champion_copy`` (a file
    of ``models/champion/`` copied, its manifest not yet written)."""
    wanted, _, nth = os.environ.get(FAULT_PAUSE_ENV, "").partition(":")
    if wanted != point:
        return
    _fault_counts[point] = _fault_counts.get(point, 0) + 1
    if _fault_counts[point] == int(nth or 1):
        print(f"trainboard: fault pause at {point}", file=sys.stderr, flush=True)
        time.sleep(3600)


_fault_counts: dict[str, int] = {}
