"""The two mirrors of TensorBoard logs: DirectoryMirror sends a growing local folder up to the run's
storage while training writes it; BucketMirror brings a bucket prefix down into the TensorBoard pod.

Both rely on event files only growing: they move only the bytes added since the last sync.
"""

from __future__ import annotations

import errno
import logging
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple

from trainboard.storage.backends import Backend, backend_for
from trainboard.storage.errors import PreconditionFailed
from trainboard.storage.retention import is_run, retained_runs, run_starts, runs_within
from trainboard.storage.uris import join

# GCS allows at most 1024 components in a composite object; start over well before that (local files
# too: one rule for both backends).
_MAX_COMPOSE_APPENDS = 1000
# TensorBoard loads files whose name holds "tfevents": a file being downloaded must not look like one.
_PARTIAL_PREFIX = ".mirror-partial-"
# What the local file system answers for a name it cannot hold: too long (a segment over 255 bytes), or a
# file where a folder must be (or the other way round). That object is skipped; any other error (a full
# disk, a lost connection) fails the sync, and health says so.
_UNMIRRORABLE = {errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.EILSEQ, errno.EINVAL}
_CRC_CHUNK_BYTES = 1024 * 1024
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
            # Streamed from the file, and only up to the size stat saw: training may be writing more.
            if state and stat.st_size > state.size and state.appends < _MAX_COMPOSE_APPENDS:
                target.append(dest, path, state.size, stat.st_size, state.appends)
                state.appends += 1
                sent += stat.st_size - state.size
            else:
                target.upload_file(path, dest, stat.st_size)
                state = self._files[rel] = _MirroredFile()
                sent += stat.st_size
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


def _crc32c(data: bytes, crc: int = 0) -> int:
    """``crc`` (the CRC32C of the bytes before ``data``) extended with ``data``."""
    import google_crc32c  # the Google client's own, imported on first use like the client

    return google_crc32c.extend(crc, data)


def _file_crc32c(path: Path) -> int:
    crc = 0
    with path.open("rb") as f:
        while chunk := f.read(_CRC_CHUNK_BYTES):
            crc = _crc32c(chunk, crc)
    return crc


class _Progress:
    """A file that notes the time of each write (a long download that is still moving is not hung) and
    the CRC32C of what it holds (``crc``: given for the bytes it held before)."""

    def __init__(self, f: BinaryIO, mirror: BucketMirror, crc: int = 0) -> None:
        self._f, self._mirror, self.crc = f, mirror, crc

    def write(self, data: bytes) -> int:
        self._mirror.last_progress = time.time()
        self.crc = _crc32c(data, self.crc)
        return self._f.write(data)


# (size, version, CRC32C or None) of an object, as list_checksums lists it.
_Listed = tuple[int, int, int | None]


class _Copy(NamedTuple):
    """What ``dest`` holds of an object: ``size`` bytes of generation ``version`` (None: found on the volume
    at a restart), whose CRC32C is ``crc`` (None: not known without reading the file)."""

    size: int
    version: int | None
    crc: int | None = None


@dataclass
class BucketMirror:
    """Mirror a bucket prefix into a local folder, incrementally: the TensorBoard pod's sidecar
    (``python -m trainboard.bucket_mirror``).

    TensorBoard reading gs:// itself lists every run folder and stats every event file at each reload (tens
    of storage requests a reload for a team's bucket, all day, even when nothing changes). This mirror sends
    one listing request per 1000 objects per interval, and downloads only what changed: the new bytes of a
    grown event file (one ranged read) or a new file. TensorBoard then reads the local copy.

    Retention (``keep_runs`` > 0): only the latest ``keep_runs`` runs (by start time: retention.py) and
    every run ever promoted (a ``models/<run>/`` beside ``source``, as trainboard.layout lays out a root)
    are mirrored; the files of any other run are deleted from ``dest``. ``max_bytes`` > 0 bounds the
    volume whatever the bucket holds (runs of profiles, years of champions): of those runs, only what fits
    (runs_within) is mirrored, the files that are not in run folders counted first; a run left out is
    logged once. Files are deleted before any is fetched, so the volume never holds more than the budget
    (and one partial download).

    Robust for a long-lived pod: objects are streamed to disk in chunks (memory does not grow with an
    object's size); what is already in ``dest`` counts as copied, so a restarted mirror (same volume)
    fetches only the bytes it lacks (a download killed half-way included); an object whose name would
    land outside ``dest``, or that the local file system cannot hold (a name too long), is refused, logged
    once, and skipped while it is listed: the other objects go on.
    """

    source: str
    dest: Path
    keep_runs: int = 0
    max_bytes: int = 0
    bytes_received: int = 0
    last_progress: float = 0.0
    refused: set[str] = field(default_factory=set)
    over_budget: set[str] = field(default_factory=set)
    _copied: dict[str, _Copy] = field(default_factory=dict)
    _seeded: bool = False
    _partials: list[Path] = field(default_factory=list)

    def _seed_from_disk(self) -> None:
        """A restart: the files already in ``dest`` are copies of the objects' first bytes (event files
        only grow); a partial download left by a killed mirror is resumed by _fetch_whole."""
        if self.dest.is_dir():
            for path in self.dest.rglob("*"):
                if path.name.startswith(_PARTIAL_PREFIX):
                    self._partials.append(path)
                elif path.is_file() and not path.is_symlink():
                    self._copied[path.relative_to(self.dest).as_posix()] = _Copy(path.stat().st_size, None)
        self._seeded = True

    def _retain(self, source: Backend, listing: dict[str, _Listed]) -> dict[str, _Listed]:
        models = join(self.source.rstrip("/").rsplit("/", 1)[0], "models")
        # One more listing per interval: the runs ever promoted (their models/<run>/ is kept for rollbacks).
        promoted = {rel.split("/", 1)[0] for rel in source.list_versions(models) if "/" in rel}
        runs = {rel.split("/", 1)[0] for rel in listing if "/" in rel}
        starts = run_starts(listing)
        kept = retained_runs(runs, self.keep_runs, promoted, starts)
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
        return {rel: v for rel, v in listing.items() if rel.split("/", 1)[0] not in self.over_budget}

    def _fetch(self, source: Backend, rel: str, listed: _Listed) -> int:
        """Bring ``dest/rel`` to the ``listed`` size and version; return the bytes downloaded."""
        size, version, _ = listed
        copied = self._copied.get(rel)
        path = self.dest / rel
        have = path.stat().st_size if path.is_file() else -1
        if copied is not None and copied.version is None and have == size:
            self._copied[rel] = _Copy(size, version)  # seeded from disk after a restart: the copy is complete
            return 0
        grown = 0 < have < size and copied is not None and (copied.version is None or have >= copied.size)
        if grown and self._fetch_tail(source, rel, listed, have):
            return size - have
        return self._fetch_whole(source, rel, listed)

    def _fetch_tail(self, source: Backend, rel: str, listed: _Listed, have: int) -> bool:
        """Append the object's bytes from ``have`` on to the copy; False, the copy left as it was, when the
        object's first ``have`` bytes turn out not to be the copy's (rewritten, not appended to).

        The rule: an append (a compose on GCS) makes a new generation whose first bytes are the old ones;
        a rewrite makes one whose first bytes may differ. A generation that changed says neither, and the
        listing's CRC32C covers only the whole object. So the copy's CRC32C (kept from the bytes fetched,
        read from the file once after a restart) is extended with the tail as it streams in and compared
        with the listed one: equal, it was an append, and an object appended to at every epoch costs only
        its tails; different, it is fetched whole. A listing without CRC32C (a local source): growth is
        trusted."""
        size, version, crc = listed
        copied, path = self._copied[rel], self.dest / rel
        before = 0
        if crc is not None:
            before = copied.crc if copied.crc is not None and copied.size == have else _file_crc32c(path)
        with path.open("ab") as f:
            out = _Progress(f, self, before)
            # Any generation: the bytes below ``size`` are the same in every later one of an append.
            source.download_range(join(self.source, rel), out, have, size)
        if crc is not None and out.crc != crc:
            os.truncate(path, have)
            log.warning(
                "bucket mirror: %s below %s was rewritten, not appended to: fetched whole", rel, self.source
            )
            return False
        self._copied[rel] = _Copy(size, version, out.crc if crc is not None else None)
        return True

    def _fetch_whole(self, source: Backend, rel: str, listed: _Listed) -> int:
        """Download the listed generation into a partial file, then rename it onto ``dest/rel``."""
        size, version, _ = listed
        path = self.dest / rel
        if path.is_dir():  # a folder of objects below this name: the download could not be renamed onto it
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
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
                out = _Progress(f, self)
                # This generation only: chunks of two different objects must not make one file.
                source.download_range(join(self.source, rel), out, start, size, version)
        except (PreconditionFailed, FileNotFoundError):
            partial.unlink(missing_ok=True)  # that generation is gone: nothing to resume
            raise
        partial.replace(path)
        self._copied[rel] = _Copy(size, version, out.crc if start == 0 else None)
        return size - start

    def _delete_unlisted(self, listing: dict[str, _Listed]) -> None:
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
        listing = source.list_checksums(self.source)
        self.refused &= set(listing)  # an object deleted, then written again, is tried again
        for rel in [r for r in listing if r not in self.refused and unsafe_name(r)]:
            self.refused.add(rel)
            log.error("bucket mirror: refused object %r below %s: %s", rel, self.source, unsafe_name(rel))
        listing = {r: v for r, v in listing.items() if r not in self.refused}
        if self.keep_runs > 0 or self.max_bytes > 0:
            listing = self._retain(source, listing)
        self._delete_unlisted(listing)
        received = 0
        for rel, listed in sorted(listing.items()):
            copied = self._copied.get(rel)
            if copied is not None and (copied.size, copied.version) == listed[:2]:
                continue
            try:
                received += self._fetch(source, rel, listed)
            except (PreconditionFailed, FileNotFoundError) as e:
                # Replaced or deleted since the listing (a training run composing onto it): the next
                # interval's listing has its new version. The other objects go on.
                log.info("bucket mirror: %s changed while it was fetched (%s); next interval", rel, e)
            except OSError as e:
                if e.errno not in _UNMIRRORABLE:
                    raise
                self.refused.add(rel)
                log.error("bucket mirror: refused object %r below %s: %s", rel, self.source, e.strerror)
        # Partial downloads found at the restart that this first sync did not resume: of objects gone.
        for partial in self._partials:
            partial.unlink(missing_ok=True)
        self._partials.clear()
        self.bytes_received += received
        return received
