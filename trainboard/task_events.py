"""What a task tells whoever runs it, besides its logs: one marked JSON line per event on stdout.

A task's output is mostly logs (KFP's executor, TensorFlow, Keras); `trainboard local` keeps those in a
log file and shows only these events: an epoch's metrics, how far data preparation is, how many workers
train (``workers``, with ``how`` they run). On a cluster they are plain lines in the pod's log.
TensorFlow-free: the tasks emit, the CLI parses.
"""

from __future__ import annotations

import json
import time
from typing import Any

MARK = "trainboard-event "


def emit(kind: str, **fields: Any) -> None:
    print(MARK + json.dumps({"kind": kind, **fields}), flush=True)


def parse(line: str) -> dict[str, Any] | None:
    """The event in ``line`` (anywhere in it: kfp.local indents a task's lines), or None."""
    start = line.find(MARK)
    if start < 0:
        return None
    try:
        event = json.loads(line[start + len(MARK) :])
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


class Progress:
    """``progress`` events of ``done`` out of ``total`` ``unit``: the first, then at most one every
    ``every`` seconds, and the last, so that a fast loop does not flood the output."""

    def __init__(self, unit: str, total: int, every: float = 0.5):
        self.unit, self.total, self.every = unit, total, every
        self._last = -float("inf")

    def update(self, done: int) -> None:
        now = time.monotonic()
        if done >= self.total or now - self._last >= self.every:
            self._last = now
            emit("progress", unit=self.unit, done=done, total=self.total)
