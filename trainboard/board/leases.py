"""Which runs are training now, as the board's mirror sees it: a run holds a lease on its name while it
works, ``<root>/leases/<run>.json`` (trainboard.artifacts.lease: created when the run starts, renewed every
minute, deleted when it ends). One listing of that small folder names the live runs; the mirror then
watches only their folders closely.
"""

from __future__ import annotations

import time

from trainboard.layout import LEASE_SUFFIX, TENSORBOARD, leases_dir
from trainboard.storage.backends import backend_for


def leases_folder(source: str) -> str | None:
    """``<root>/leases`` when ``source`` is a root's ``tensorboard`` folder (``<root>/tensorboard``); None
    for any other folder, which has no leases beside it (nothing is guessed)."""
    parent, _, name = source.rstrip("/").rpartition("/")
    if name != TENSORBOARD or not parent or parent.endswith(":/"):
        return None
    return leases_dir(parent)


def live_runs(source: str, lease_seconds: float, now: float | None = None) -> set[str]:
    """The runs with a lease beside ``source`` renewed within ``lease_seconds`` (a lease's ``expires`` is
    its last renewal plus that: a killed run's lease, never deleted, stops counting when it would have
    expired, without reading it). One listing; an empty set when ``source`` has no leases folder."""
    folder = leases_folder(source)
    if folder is None:
        return set()
    now = time.time() if now is None else now
    return {
        name.removesuffix(LEASE_SUFFIX)
        for name, (_, modified) in backend_for(folder).list_modified(folder).items()
        if "/" not in name and name.endswith(LEASE_SUFFIX) and modified + lease_seconds > now
    }
