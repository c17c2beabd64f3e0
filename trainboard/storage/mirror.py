"""The two mirrors of TensorBoard logs: DirectoryMirror sends a growing local folder up to the run's
storage while training writes it; BucketMirror brings a bucket prefix down into the TensorBoard pod.

Both rely on event files only growing: they move only the bytes added since the last sync.
"""

from __future__ import annotations

import logging
import re
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from trainboard.storage.backends import Backend, backend_for
from trainboard.storage.errors import PreconditionFailed
from trainboard.storage.uris import join

# GCS allows at most 1024 components in a composite object; start over well before that (local files
# too: one rule for both backends).
_MAX_COMPOSE_APPENDS = 1000
# TensorBoard loads files whose name holds "tfevents": a file being downloaded must not look like one.
_PARTIAL_PREFIX = ".mirror-partial-"
log = logging.getLogger("trainboard.storage")


@dataclass
class _MirroredFile:
    size: int = 0
    mtime_ns: int = 0
    appends: int = 0


@dataclass
class DirectoryMirror:
    """Mirror a growing local directory (TensorBoard event files) to ``target`` incrementally.

    Event files only grow, so a sync sends only the bytes added since the last sync: appended to a
    local target file, or uploaded as a small object and composed onto the existing one on GCS (with a
    generation precondition). Nothing already in the bucket is uploaded again, so a run's upload cost
    stays close to the size of its logs however often it syncs.
    """

    local_dir: Path
    target: str
    bytes_uploaded: int = 0
    _files: dict[str, _MirroredFile] = field(default_factory=dict)

    def lengths(self) -> dict[str, int]:
        """{relative path: bytes sent so far} of every mirrored file."""
        return {rel: state.size for rel, state in self._files.items()}

    def sync(self) -> int:
        """Send what changed since the last call; return the number of bytes sent."""
        target = backend_for(self.target)
        sent = 0
        for path in sorted(Path(self.local_dir).rglob("*")):
            if not path.is_file():
                continue
            rel = path.relative_to(self.local_dir).as_posix()
            stat = path.stat()
            state = self._files.get(rel)
            if state and (stat.st_size, stat.st_mtime_ns) == (state.size, state.mtime_ns):
                continue
            dest = join(self.target, rel)
            if state and stat.st_size > state.size and state.appends < _MAX_COMPOSE_APPENDS:
                with path.open("rb") as f:
                    f.seek(state.size)
                    tail = f.read(stat.st_size - state.size)
                target.append(dest, tail, state.size, state.appends)
                state.appends += 1
                sent += len(tail)
            else:
                data = path.read_bytes()
                target.write_bytes(dest, data)
                state = self._files[rel] = _MirroredFile()
                sent += len(data)
            state.size, state.mtime_ns = stat.st_size, stat.st_mtime_ns
        self.bytes_uploaded += sent
        return sent


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
    if parts[-1].startswith(_PARTIAL_PREFIX):
        return "name of the mirror's partial files"
    return None


# How trainboard.layout.new_run_name names runs (they sort by start time); other folders (not runs) are kept.
_RUN_NAME = re.compile(r"\d{8}-\d{6}-.+")


def retained_runs(runs: set[str], keep: int, promoted: set[str]) -> set[str]:
    """The run folders a retention of ``keep`` runs mirrors: the ``keep`` latest runs (names sort by start
    time), every run in ``promoted`` (ever champion: it has a ``models/<run>/``), and every folder that is
    not named as a run. ``keep`` 0 keeps everything."""
    if keep <= 0:
        return set(runs)
    named = sorted(r for r in runs if _RUN_NAME.fullmatch(r))
    return (runs - set(named)) | set(named[-keep:]) | (set(named) & promoted)


def runs_within(sizes: dict[str, int], budget: int, promoted: set[str]) -> set[str]:
    """The runs of ``sizes`` ({run: bytes}) that fit in ``budget`` bytes, taken in order: the latest
    promoted run (the champion, unless rolled back), then the others newest first; one that does not fit is
    skipped and the older ones are still tried."""
    order = sorted(sizes, reverse=True)
    champion = max(promoted & set(order), default=None)
    if champion is not None:
        order.remove(champion)
        order.insert(0, champion)
    fitted, used = set(), 0
    for run in order:
        if used + sizes[run] <= budget:
            fitted.add(run)
            used += sizes[run]
    return fitted


class _Progress:
    """A file that notes the time of each write: a long download that is still moving is not hung."""

    def __init__(self, f: BinaryIO, mirror: BucketMirror) -> None:
        self._f, self._mirror = f, mirror

    def write(self, data: bytes) -> int:
        self._mirror.last_progress = time.time()
        return self._f.write(data)


@dataclass
class BucketMirror:
    """Mirror a bucket prefix into a local folder, incrementally: the TensorBoard pod's sidecar
    (``python -m trainboard.bucket_mirror``).

    TensorBoard reading gs:// itself lists every run folder and stats every event file at each reload (tens
    of storage requests a reload for a team's bucket, all day, even when nothing changes). This mirror sends
    one listing request per 1000 objects per interval, and downloads only what changed: the new bytes of a
    grown event file (one ranged read) or a new file. TensorBoard then reads the local copy.

    Retention (``keep_runs`` > 0): only the latest ``keep_runs`` runs and every run ever promoted (a
    ``models/<run>/`` beside ``source``, as trainboard.layout lays out a root) are mirrored; the files of
    any other run are deleted from ``dest``. ``max_bytes`` > 0 bounds the volume whatever the bucket holds
    (runs of profiles, years of champions): of those runs, only what fits (runs_within) is mirrored, the
    files that are not run folders counted first; a run left out is logged once. Files are deleted
    before any is fetched, so the volume never holds more than the budget (and one partial download).

    Robust for a long-lived pod: objects are streamed to disk in chunks (memory does not grow with an
    object's size); what is already in ``dest`` counts as copied, so a restarted mirror (same volume)
    fetches only the bytes it lacks (a download killed half-way included); an object whose name would
    land outside ``dest`` is refused, logged once, and skipped.
    """

    source: str
    dest: Path
    keep_runs: int = 0
    max_bytes: int = 0
    bytes_received: int = 0
    last_progress: float = 0.0
    refused: set[str] = field(default_factory=set)
    over_budget: set[str] = field(default_factory=set)
    _copied: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    _seeded: bool = False
    _partials: list[Path] = field(default_factory=list)

    def _seed_from_disk(self) -> None:
        """A restart: the files already in ``dest`` are copies of the objects' first bytes (event files
        only grow); a partial download left by a killed mirror is resumed by _fetch."""
        if self.dest.is_dir():
            for path in self.dest.rglob("*"):
                if path.name.startswith(_PARTIAL_PREFIX):
                    self._partials.append(path)
                elif path.is_file() and not path.is_symlink():
                    self._copied[path.relative_to(self.dest).as_posix()] = (path.stat().st_size, None)
        self._seeded = True

    def _retain(self, source: Backend, listing: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
        models = join(self.source.rstrip("/").rsplit("/", 1)[0], "models")
        # One more listing per interval: the runs ever promoted (their models/<run>/ is kept for rollbacks).
        promoted = {rel.split("/", 1)[0] for rel in source.list_versions(models) if "/" in rel}
        runs = {rel.split("/", 1)[0] for rel in listing if "/" in rel}
        kept = retained_runs(runs, self.keep_runs, promoted) if self.keep_runs > 0 else runs
        listing = {rel: v for rel, v in listing.items() if "/" not in rel or rel.split("/", 1)[0] in kept}
        if self.max_bytes <= 0:
            return listing
        sizes: dict[str, int] = {}
        for rel, (size, _) in listing.items():
            run = rel.split("/", 1)[0] if "/" in rel and _RUN_NAME.fullmatch(rel.split("/", 1)[0]) else ""
            sizes[run] = sizes.get(run, 0) + size
        fitted = runs_within(sizes, self.max_bytes - sizes.pop("", 0), promoted)
        for run in sorted(set(sizes) - fitted - self.over_budget):
            log.warning(
                "bucket mirror: run %s (%.1f MiB) left out: the volume's budget of %.0f MiB is full",
                run, sizes[run] / 2**20, self.max_bytes / 2**20,
            )  # fmt: skip
        self.over_budget = set(sizes) - fitted
        return {rel: v for rel, v in listing.items() if rel.split("/", 1)[0] not in self.over_budget}

    def _fetch(self, source: Backend, rel: str, size: int, version: int) -> int:
        """Bring ``dest/rel`` to the listed ``size`` and ``version``; return the bytes downloaded."""
        copied = self._copied.get(rel)
        path = self.dest / rel
        uri = join(self.source, rel)
        have = path.stat().st_size if path.is_file() else -1
        received = 0
        if copied is not None and copied[1] is None and have == size:
            pass  # seeded from disk after a restart: the copy is complete
        elif 0 < have < size and copied is not None and (copied[1] is None or have >= copied[0]):
            # Event files only grow: fetch the new tail only, streamed onto the copy. Any generation: the
            # bytes below ``size`` are the same in every later one (an append composes a new generation).
            with path.open("ab") as f:
                source.download_range(uri, _Progress(f, self), have, size)
            received = size - have
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            # The partial file names the object's generation: a restarted mirror resumes it where the
            # killed one stopped, and only for that same generation. (No "tfevents" in the name: TensorBoard
            # must not read it.)
            stem = f"{_PARTIAL_PREFIX}{zlib.crc32(path.name.encode()):08x}-"
            partial = path.with_name(f"{stem}{version}")
            for stale in path.parent.glob(f"{stem}*"):
                if stale != partial:
                    stale.unlink(missing_ok=True)
            start = partial.stat().st_size if partial.is_file() else 0
            if start > size:
                partial.unlink()
                start = 0
            try:
                with partial.open("ab") as f:
                    # This generation only: chunks of two different objects must not make one file.
                    source.download_range(uri, _Progress(f, self), start, size, version)
            except (PreconditionFailed, FileNotFoundError):
                partial.unlink(missing_ok=True)  # that generation is gone: nothing to resume
                raise
            partial.replace(path)
            received = size - start
        self._copied[rel] = (path.stat().st_size, version)
        return received

    def _delete_unlisted(self, listing: dict[str, tuple[int, int]]) -> None:
        """Delete the copies of objects gone from ``listing`` (deleted, or left out by retention)."""
        for rel in set(self._copied) - set(listing):
            path = self.dest / rel
            path.unlink(missing_ok=True)
            del self._copied[rel]
            for folder in path.parents:  # a run dropped by retention leaves no empty folder behind
                if folder == self.dest or not folder.is_relative_to(self.dest) or any(folder.iterdir()):
                    break
                folder.rmdir()

    def sync(self) -> int:
        """Bring ``dest`` up to date with ``source``; return the number of bytes downloaded."""
        if not self._seeded:
            self._seed_from_disk()
        source = backend_for(self.source)
        listing = source.list_versions(self.source)
        received = 0
        for rel in [r for r in listing if r not in self.refused and unsafe_name(r)]:
            self.refused.add(rel)
            log.error("bucket mirror: refused object %r below %s: %s", rel, self.source, unsafe_name(rel))
        listing = {r: v for r, v in listing.items() if r not in self.refused}
        if self.keep_runs > 0 or self.max_bytes > 0:
            listing = self._retain(source, listing)
        self._delete_unlisted(listing)
        for rel, (size, version) in sorted(listing.items()):
            copied = self._copied.get(rel)
            if copied == (size, version):
                continue
            try:
                received += self._fetch(source, rel, size, version)
            except (PreconditionFailed, FileNotFoundError) as e:
                # Replaced or deleted since the listing (a training run composing onto it): the next
                # interval's listing has its new version. The other objects go on.
                log.info("bucket mirror: %s changed while it was fetched (%s); next interval", rel, e)
        # Partial downloads found at the restart that this first sync did not resume: of objects gone.
        for partial in self._partials:
            partial.unlink(missing_ok=True)
        self._partials.clear()
        self.bytes_received += received
        return received
