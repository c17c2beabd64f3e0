"""BucketMirror: a bucket prefix brought down into the TensorBoard pod's volume, incrementally (its
command: bucket_mirror.py). Event files only grow: a sync fetches only the bytes added since the last one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from trainboard.artifacts.lease import LEASE_SECONDS
from trainboard.board.leases import live_runs
from trainboard.board.retention import is_run, retained_runs, run_starts, runs_within
from trainboard.board.volume import PARTIAL_PREFIX, Listed, Volume
from trainboard.layout import models_root
from trainboard.storage.backends import Backend, backend_for
from trainboard.storage.uris import join

log = logging.getLogger("trainboard.board")


def unsafe_name(rel: str) -> str | None:
    """Why an object's name (relative to the mirrored prefix) must not be written below the mirror's
    folder, or None when it is safe: it would resolve outside the folder (``..``), is absolute, has an
    empty or ``.`` segment, or would pass for one of the mirror's own files."""
    if not rel:
        return "empty name"
    if rel.startswith("/") or "\\" in rel or "\0" in rel:
        return "absolute path, backslash or NUL"
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return "empty, '.' or '..' segment"
    if parts[-1].startswith(PARTIAL_PREFIX):
        return "name of the mirror's partial files"
    return None


@dataclass
class BucketMirror:
    """Mirror a bucket prefix into a local folder, incrementally: the TensorBoard pod's sidecar
    (``python -m trainboard.board.bucket_mirror``).

    TensorBoard reading gs:// itself lists every run folder and stats every event file at each reload (tens
    of storage requests a reload for a team's bucket, all day, even when nothing changes). This mirror
    downloads only what changed: the new bytes of a grown event file (one ranged read) or a new file
    (volume.py), folders ``workers`` at a time. TensorBoard then reads the local copy.

    Two ways to find what changed. ``sync`` lists the whole prefix (one request per 1000 objects): every
    run, retention, deletions; the safety net, run every few tens of seconds. ``sync_live`` lists only the
    folders of the runs training now (``refresh_leases``: the leases beside ``source``, one small listing),
    so a new epoch is on the volume a second after it is in the bucket whatever the history holds. A run
    without a lease (an old writer, a ``source`` that is not a root's ``tensorboard``) shows at the next
    ``sync``.

    Retention (``keep_runs`` > 0): only the latest ``keep_runs`` runs (by start time: retention.py) and
    every run ever promoted (a ``models/<run>/`` beside ``source``, as trainboard.layout lays out a root)
    are mirrored; the files of any other run are deleted from ``dest``. ``max_bytes`` > 0 bounds the
    volume whatever the bucket holds (runs of profiles, years of champions): of those runs, only what fits
    (runs_within) is mirrored, the files that are not in run folders counted first; a run left out is
    logged once. Files are deleted before any is fetched, so the volume never holds more than the budget
    (and ``workers`` partial downloads); a live run new since the last ``sync`` is fetched before retention
    has weighed it (it is the newest), and the next ``sync`` applies the budget.

    Robust for a long-lived pod: objects are streamed to disk in chunks (memory does not grow with an
    object's size); what is already in ``dest`` counts as copied once its content is known to be the
    object's (a CRC32C, or a local source's modification time: volume.py), so a restarted mirror (same
    volume) fetches only the bytes it lacks (a download killed half-way included); an object whose name would
    land outside ``dest``, or that the local file system cannot hold (a name too long), is refused, logged
    once, and skipped while it is listed: the other objects go on.
    """

    source: str
    dest: Path
    keep_runs: int = 0
    max_bytes: int = 0
    workers: int = 8
    lease_seconds: float = LEASE_SECONDS
    bytes_received: int = 0
    over_budget: set[str] = field(default_factory=set)
    live: set[str] = field(default_factory=set)
    _ended: set[str] = field(default_factory=set)
    _left_out: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._volume = Volume(self.source, Path(self.dest), self.workers)

    @property
    def last_progress(self) -> float:
        """When a download last moved (Unix time): a long one that is still moving is not hung."""
        return self._volume.last_progress

    @property
    def refused(self) -> set[str]:
        """The objects refused (unsafe names, names the volume cannot hold), skipped while listed."""
        return self._volume.refused

    def _listed(self, source: Backend, under: str = "") -> dict[str, Listed]:
        """The objects below ``source/under`` ({name below ``source``: (size, version, CRC32C)}), less
        the refused ones; one listing."""
        uri = join(self.source, under) if under else self.source
        listing = {f"{under}/{rel}" if under else rel: v for rel, v in source.list_checksums(uri).items()}
        refused = self.refused
        prefix = f"{under}/" if under else ""
        # An object deleted, then written again, is tried again.
        refused.difference_update({r for r in refused if r.startswith(prefix) and r not in listing})
        for rel in [r for r in listing if r not in refused and unsafe_name(r)]:
            refused.add(rel)
            log.error("bucket mirror: refused object %r below %s: %s", rel, self.source, unsafe_name(rel))
        return {r: v for r, v in listing.items() if r not in refused}

    def _retain(self, source: Backend, listing: dict[str, Listed]) -> dict[str, Listed]:
        models = models_root(self.source.rstrip("/").rsplit("/", 1)[0])
        # One more listing per interval: the runs ever promoted (their models/<run>/ is kept for rollbacks).
        promoted = {rel.split("/", 1)[0] for rel in source.list_versions(models) if "/" in rel}
        runs = {rel.split("/", 1)[0] for rel in listing if "/" in rel}
        starts = run_starts(listing)
        kept = retained_runs(runs, self.keep_runs, promoted, starts)
        self._left_out = runs - kept
        listing = {rel: v for rel, v in listing.items() if "/" not in rel or rel.split("/", 1)[0] in kept}
        if self.max_bytes <= 0:
            return listing
        sizes: dict[str, int] = {}
        for rel, (size, *_) in listing.items():
            run = rel.split("/", 1)[0] if "/" in rel and is_run(rel.split("/", 1)[0]) else ""
            sizes[run] = sizes.get(run, 0) + size
        fitted = runs_within(sizes, self.max_bytes - sizes.pop("", 0), promoted, starts)
        for run in sorted(set(sizes) - fitted - self.over_budget):
            log.warning(
                "bucket mirror: run %s (%.1f MiB) left out: the volume's budget of %.0f MiB is full",
                run, sizes[run] / 2**20, self.max_bytes / 2**20,
            )  # fmt: skip
        self.over_budget = set(sizes) - fitted
        self._left_out |= self.over_budget
        return {rel: v for rel, v in listing.items() if rel.split("/", 1)[0] not in self.over_budget}

    def sync(self) -> int:
        """Bring ``dest`` up to date with the whole of ``source``; return the number of bytes downloaded."""
        self._volume.seed_from_disk()
        source = backend_for(self.source)
        listing = self._listed(source)
        if self.keep_runs > 0 or self.max_bytes > 0:
            listing = self._retain(source, listing)
        self._volume.delete_unlisted(listing)
        received = self._volume.fetch_changed(source, listing)
        self._volume.drop_partials()
        self.bytes_received += received
        return received

    def refresh_leases(self, now: float | None = None) -> None:
        """List the leases beside ``source``: the runs training now (``live``). A run whose lease ended
        since the last look gets one more ``sync_live``: what it wrote last."""
        live = {run for run in live_runs(self.source, self.lease_seconds, now) if is_run(run)}
        self._ended |= self.live - live
        self.live = live

    def sync_live(self) -> int:
        """Bring the folders of the live runs (and of those that just ended) up to date, one listing
        each, leaving every other folder as it is; the bytes downloaded. A run retention left out at the
        last ``sync`` is not fetched."""
        self._volume.seed_from_disk()
        source = backend_for(self.source)
        received = 0
        for run in sorted((self.live | self._ended) - self._left_out):
            listing = self._listed(source, run)
            self._volume.delete_unlisted(listing, f"{run}/")
            received += self._volume.fetch_changed(source, listing)
        self._ended.clear()
        self.bytes_received += received
        return received
