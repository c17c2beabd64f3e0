"""A run leases its name: ``<root>/leases/<run>.json`` says who is running it and until when.

A run name is not an identity: two runs started with the same ``--run-name`` would train into one run
(every epoch twice in TensorBoard, state.json and the model from different runs). So before any work a
run takes the lease on its name, a small object created or replaced only by compare-and-swap (a
generation precondition on GCS, a lock and a content check locally). The holder is the KFP run (its job
id: a retried task of the same run holds it already, and resumes) or, for `trainboard local`, the
command itself (HOLDER_ENV, inherited by kfp.local's task processes). It is renewed while the run works
and has an expiry, so a run that was killed frees its name by itself. Where it lies: trainboard.layout;
the board's mirror lists the leases to find the runs training (trainboard/board/leases.py).
TensorFlow-free.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from trainboard import storage
from trainboard.artifacts.champion import who
from trainboard.checks import hidden_characters, printable
from trainboard.errors import UsageError
from trainboard.layout import lease_file

# How long a lease lasts after its last renewal: long enough to cover the steps that do not renew it (data
# preparation, a GPU pod waiting for a node); a killed run's name is free again after it.
LEASE_SECONDS = 1800.0
RENEW_SECONDS = 60
# A lease's expiry is at most LEASE_SECONDS after its last renewal; one further ahead than that (plus this
# much for the clocks of two machines) was not written by a run: a hand edit, or a clock years off.
CLOCK_SKEW_SECONDS = 300.0
HOLDER_ENV = "TRAINBOARD_LEASE_HOLDER"
log = logging.getLogger(__name__)


@dataclass
class Lease:
    run: str
    holder: str
    expires: float  # seconds since the epoch
    by: str = ""  # user@host of the process that last renewed it

    def ends(self) -> str:
        return datetime.fromtimestamp(self.expires, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def holder_for(job_id: str) -> str:
    """This process's holder: the command's own lease under `trainboard local`, else the KFP run (``job_id``:
    {{$.pipeline_job_uuid}}, which the KFP driver resolves to the run's id for every task and every retry
    of it: backend/src/v2/driver/resolve.go; tests/test_compile.py holds the wiring)."""
    return os.environ.get(HOLDER_ENV) or f"kfp-run-{job_id}"


class NotALease(ValueError):
    """A lease file that no run wrote: not JSON, other fields or types, an expiry that cannot be real."""


def parse_lease(data: bytes, run: str, now: float) -> Lease:
    """The lease in ``data`` (the file of ``run``), or NotALease saying what is wrong with it."""
    try:
        fields = json.loads(data)
    except ValueError as e:  # truncated, not JSON, not UTF-8
        raise NotALease(f"not JSON ({e})") from None
    if not isinstance(fields, dict) or set(fields) - {"run", "holder", "expires", "by"}:
        raise NotALease("not a lease's fields (run, holder, expires, by)")
    if fields.get("run") != run:
        raise NotALease(f"run {printable(repr(fields.get('run')))}, not {run}")
    holder, by, expires = fields.get("holder"), fields.get("by", ""), fields.get("expires")
    for name, value in (("holder", holder), ("by", by)):
        if not isinstance(value, str) or hidden_characters(value) or (name == "holder" and not value):
            raise NotALease(f"{name} {printable(repr(value))} is not a holder's name")
    if isinstance(expires, bool) or not isinstance(expires, int | float) or not math.isfinite(expires):
        raise NotALease(f"expires {printable(repr(expires))} is not a time (seconds since the epoch)")
    if expires > now + LEASE_SECONDS + CLOCK_SKEW_SECONDS:
        days = (expires - now) / 86400
        raise NotALease(f"it expires in {days:.1f} days, but a lease lasts {LEASE_SECONDS / 60:.0f} minutes")
    return Lease(run, str(holder), float(expires), str(by))


def _read(root: str, run: str) -> tuple[Lease | None, int]:
    """The lease on ``run`` and its generation; a file that cannot be a lease holds nothing: it is treated
    as expired, said on the log (stderr), and replaced by the next taker."""
    uri = lease_file(root, run)
    data, generation = storage.read_versioned(uri)
    if data is None:
        return None, 0
    try:
        return parse_lease(data, run, time.time()), generation
    except NotALease as e:
        log.warning("trainboard: %s is not a lease a run wrote (%s): treated as expired", uri, e)
        return None, generation


def _in_use(lease: Lease, root: str) -> UsageError:
    return UsageError(
        "run_name",
        f"run {lease.run} is in use by {printable(lease.holder)} ({printable(lease.by)}) until "
        f"{lease.ends()} ({lease_file(root, lease.run)}); its lease is renewed while it runs, and a run "
        "that was killed frees the name then. Wait for it, or give this run another name",
    )


def take(root: str, run: str, holder: str, seconds: float = LEASE_SECONDS) -> Lease:
    """Take (or, for its holder, renew) the lease on ``run`` for ``seconds``; UsageError naming the holder
    and the expiry when another holder's lease has not expired. Of two takers at once, one wins."""
    lease, generation = _read(root, run)
    if lease is not None and lease.holder != holder and lease.expires > time.time():
        raise _in_use(lease, root)
    new = Lease(run, holder, time.time() + seconds, who())
    try:
        storage.write_if_generation(lease_file(root, run), json.dumps(asdict(new)).encode(), generation)
    except storage.PreconditionFailed:  # another taker wrote in between: whoever it was holds it now
        current, _ = _read(root, run)
        if current is None or current.holder != holder:
            raise _in_use(current or new, root) from None
    return new


def release(root: str, run: str, holder: str) -> None:
    """Give the name back (only this holder's lease: a lease another run took over stays)."""
    lease, _ = _read(root, run)
    if lease is not None and lease.holder == holder:
        storage.delete(lease_file(root, run))


@contextlib.contextmanager
def held(
    root: str, run: str, holder: str, *, release_at_end: bool = False, export: bool = False
) -> Iterator[Lease]:
    """The lease taken now and renewed every RENEW_SECONDS until the block ends (then given back with
    ``release_at_end``: the run's last step, or a command whose run stopped). A renewal that fails (the
    storage away) is logged and tried again at the next tick; the lease's expiry covers the gap. With
    ``export``, HOLDER_ENV names the holder for the block, for the child processes that run the tasks."""
    lease = take(root, run, holder)
    before = os.environ.get(HOLDER_ENV)
    if export:
        os.environ[HOLDER_ENV] = holder
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(RENEW_SECONDS):
            try:
                take(root, run, holder)
            except Exception as e:  # any failure: try again next tick, the expiry covers the gap
                log.warning("renewing the lease on run %s failed: %s", run, e)

    thread = threading.Thread(target=renew, name=f"lease-{run}", daemon=True)
    thread.start()
    try:
        yield lease
    finally:
        stop.set()
        thread.join()
        if export and before is None:
            os.environ.pop(HOLDER_ENV, None)
        elif export and before is not None:
            os.environ[HOLDER_ENV] = before
        if release_at_end:
            release(root, run, holder)
