"""Which runs are training now, as the board's mirror sees it: a run holds a lease on its name while it
works, ``<root>/leases/<run>.json`` (trainboard.artifacts.lease: created when the run starts, renewed every
minute, deleted when it ends). One listing of that small folder names the live runs; the mirror then
watches only their folders closely.
"""

from __future__ import annotations

import time

from trainboard.storage.backends import backend_for
from trainboard.storage.uris import join

LEASES = "leases"
TENSORBOARD = "tensorboard"
_SUFFIX = ".json"
# How long a lease lasts after its last renewal: long enough to cover the steps that do not renew it (data
# preparation, a GPU pod waiting for a node); a killed run's name is free again after it.
LEASE_SECONDS = 1800.0


def lease_file(root: str, run: str) -> str:
    """``<root>/leases/<run>.json``, the lease on ``run``'s name (written by trainboard.artifacts.lease)."""
    return join(root, LEASES, run + _SUFFIX)


def leases_folder(source: str) -> str | None:
    """``<root>/leases`` when ``source`` is a root's ``tensorboard`` folder (``<root>/tensorboard``); None
    for any other folder, which has no leases beside it (nothing is guessed)."""
    parent, _, name = source.rstrip("/").rpartition("/")
    if name != TENSORBOARD or not parent or parent.endswith(":/"):
        return None
    return join(parent, LEASES)


def live_runs(source: str, lease_seconds: float, now: float | None = None) -> set[str]:
    """The runs with a lease beside ``source`` renewed within ``lease_seconds`` (a lease's ``expires`` is
    its last renewal plus that: a killed run's lease, never deleted, stops counting when it would have
    expired, without reading it). One listing; an empty set when ``source`` has no leases folder."""
    folder = leases_folder(source)
    if folder is None:
        return set()
    now = time.time() if now is None else now
    return {
        name.removesuffix(_SUFFIX)
        for name, (_, modified) in backend_for(folder).list_modified(folder).items()
        if "/" not in name and name.endswith(_SUFFIX) and modified + lease_seconds > now
    }
