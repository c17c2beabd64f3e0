"""The board mirror's copies on its volume: which bytes of which object each local file holds, and how the
missing ones are fetched (a grown object's tail, or the whole object), several folders at once.

Event files only grow, so a copy is brought up to date by its new bytes alone, checked by CRC32C.
"""

from __future__ import annotations

import errno
import logging
import os
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple

from trainboard.storage.backends import Backend
from trainboard.storage.errors import PreconditionFailed
from trainboard.storage.uris import is_gcs, join

# TensorBoard loads files whose name holds "tfevents": a file being downloaded must not look like one.
PARTIAL_PREFIX = ".mirror-partial-"
# What the local file system answers for a name it cannot hold: too long (a segment over 255 bytes), or a
# file where a folder must be (or the other way round). That object is skipped; any other error (a full
# disk, a lost connection) fails the sync, and health says so.
_UNMIRRORABLE = {errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.EILSEQ, errno.EINVAL}
_CRC_CHUNK_BYTES = 1024 * 1024
log = logging.getLogger("trainboard.board")

# (size, version, CRC32C or None) of an object, as list_checksums lists it.
Listed = tuple[int, int, int | None]


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

    def __init__(self, f: BinaryIO, volume: Volume, crc: int = 0) -> None:
        self._f, self._volume, self.crc = f, volume, crc

    def write(self, data: bytes) -> int:
        self._volume.last_progress = time.time()
        self.crc = _crc32c(data, self.crc)
        return self._f.write(data)


class _Copy(NamedTuple):
    """What ``dest`` holds of an object: ``size`` bytes of generation ``version`` (None: found on the volume
    at a restart), whose CRC32C is ``crc`` (None: not known without reading the file)."""

    size: int
    version: int | None
    crc: int | None = None


def _clashing(listing: dict[str, Listed]) -> set[str]:
    """The listed names that are also a folder on the way to another listed name: the volume holds only
    one of the two."""
    folders = {name[:i] for name in listing for i, c in enumerate(name) if c == "/"}
    clash = folders & set(listing)
    return clash | {name for name in listing if any(name.startswith(f"{f}/") for f in clash)}


class _Staged(NamedTuple):
    """A fetch done but not yet shown: ``received`` bytes, the ``partial`` file to rename into place
    (None: the copy itself was appended to, or was complete), and what the copy will then hold."""

    received: int
    partial: Path | None
    copy: _Copy


@dataclass
class Volume:
    """The copies in ``dest`` of the objects below ``source``.

    What is already in ``dest`` counts as copied (event files only grow), so a restarted mirror fetches only
    the bytes it lacks; a download killed half-way is resumed from its partial file. A copy as long as its
    object is checked first (_same_content): the size says nothing of a rewrite at the same size."""

    source: str
    dest: Path
    workers: int = 1
    last_progress: float = 0.0
    refused: set[str] = field(default_factory=set)
    _copied: dict[str, _Copy] = field(default_factory=dict)
    _seeded: bool = False
    _partials: list[Path] = field(default_factory=list)

    @property
    def _local(self) -> bool:
        return not is_gcs(self.source)

    def seed_from_disk(self) -> None:
        """A restart: the files already in ``dest`` are taken for copies of the objects' first bytes (event
        files only grow; a complete-looking one is checked by _same_content, a grown one by its CRC32C in
        _fetch_tail); a partial download left by a killed mirror is resumed by _fetch_whole."""
        if self._seeded:
            return
        if self.dest.is_dir():
            for path in self.dest.rglob("*"):
                if path.name.startswith(PARTIAL_PREFIX):
                    self._partials.append(path)
                elif path.is_file() and not path.is_symlink():
                    self._copied[path.relative_to(self.dest).as_posix()] = _Copy(path.stat().st_size, None)
        self._seeded = True

    def drop_partials(self) -> None:
        """Partial downloads found at the restart that the first sync did not resume: of objects gone."""
        for partial in self._partials:
            partial.unlink(missing_ok=True)
        self._partials.clear()

    def delete_unlisted(self, listing: dict[str, Listed], under: str = "") -> None:
        """Delete the copies below ``under`` of objects gone from ``listing`` (deleted, or left out by
        retention)."""
        for rel in [r for r in self._copied if r.startswith(under) and r not in listing]:
            path = self.dest / rel
            path.unlink(missing_ok=True)
            del self._copied[rel]
            for folder in path.parents:  # a run dropped by retention leaves no empty folder behind
                if folder == self.dest or not folder.is_relative_to(self.dest) or any(folder.iterdir()):
                    break
                folder.rmdir()

    def fetch_changed(self, source: Backend, listing: dict[str, Listed]) -> int:
        """Bring every listed object's copy to its listed size and version; the bytes downloaded.

        Downloaded ``workers`` at a time, each new file into its partial file; then published (renamed
        into place) in name order: TensorBoard's Rust loader reads a run's files in that order and drops
        the points of later steps when an earlier step comes after them, so a file must never show before
        one that sorts ahead of it in the same sync (a resumed run's first file, last night's trend
        point). Objects whose names clash on the volume (``a/b`` beside ``a/b/c``) are fetched one after
        the other in that order, so the one refused does not depend on which thread ran first."""
        changed = [
            (rel, listed)
            for rel, listed in sorted(listing.items())
            if (copied := self._copied.get(rel)) is None or (copied.size, copied.version) != listed[:2]
        ]
        clashing = _clashing(listing)

        def download(item: tuple[str, Listed]) -> _Staged | None:
            rel, listed = item
            return (
                None if rel in clashing else self._guarded(rel, lambda: self._download(source, rel, listed))
            )

        if self.workers > 1 and len(changed) > 1:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="mirror-fetch") as pool:
                staged = list(pool.map(download, changed))
        else:
            staged = [download(item) for item in changed]
        received = 0
        for (rel, listed), done in zip(changed, staged, strict=True):
            if rel in clashing:
                done = self._guarded(rel, self._download, source, rel, listed)
            if done is not None:
                done = self._guarded(rel, self._publish, rel, done)
            received += done.received if done is not None else 0
        return received

    def _guarded(self, rel: str, step: Callable[..., _Staged], *args: object) -> _Staged | None:
        """``step(*args)`` for the object ``rel``, or None when it changed meanwhile or the volume cannot
        hold it."""
        try:
            return step(*args)
        except (PreconditionFailed, FileNotFoundError) as e:
            # Replaced or deleted since the listing (a training run composing onto it): the next
            # interval's listing has its new version. The other objects go on.
            log.info("bucket mirror: %s changed while it was fetched (%s); next interval", rel, e)
        except OSError as e:
            if e.errno not in _UNMIRRORABLE:
                raise
            self.refused.add(rel)
            log.error("bucket mirror: refused object %r below %s: %s", rel, self.source, e.strerror)
        return None

    def _publish(self, rel: str, staged: _Staged) -> _Staged:
        if staged.partial is not None:
            staged.partial.replace(self.dest / rel)
        if self._local and staged.copy.version is not None:  # what a restart compares (_same_content)
            os.utime(self.dest / rel, ns=(staged.copy.version, staged.copy.version))
        self._copied[rel] = staged.copy
        return staged

    def _download(self, source: Backend, rel: str, listed: Listed) -> _Staged:
        """The ``listed`` size and version of ``dest/rel``: appended to the copy, or in a partial file."""
        size = listed[0]
        copied = self._copied.get(rel)
        path = self.dest / rel
        have = path.stat().st_size if path.is_file() else -1
        if copied is not None and copied.version is None and have == size:  # seeded at a restart
            if (same := self._same_content(path, listed)) is not None:
                return _Staged(0, None, same)
            log.warning(
                "bucket mirror: %s below %s was rewritten at its size while no mirror ran: fetched whole",
                rel, self.source,
            )  # fmt: skip
            return self._fetch_whole(source, rel, listed)
        grown = 0 < have < size and copied is not None and (copied.version is None or have >= copied.size)
        if grown and (tail := self._fetch_tail(source, rel, listed, have)) is not None:
            return tail
        return self._fetch_whole(source, rel, listed)

    def _same_content(self, path: Path, listed: Listed) -> _Copy | None:
        """The complete copy of the listed object that ``path``, found on the volume at a restart and as
        long as the object, is; None when it holds other bytes (the size says nothing of an object
        rewritten at its size while no mirror ran). On GCS, by the listing's CRC32C (of the whole object,
        composed ones included) against the copy's, read once. A local source has no checksum without
        reading both files at every listing: its version, the modification time in ns, is set on each
        copy (_publish), and an equal one is the same write (rsync's rule: a rewrite moves it whatever
        the size; a tool that puts an old time back on new bytes would hide them, from rsync too)."""
        size, version, crc = listed
        if crc is not None:
            copy_crc = _file_crc32c(path)
            return _Copy(size, version, copy_crc) if copy_crc == crc else None
        return _Copy(size, version) if self._local and path.stat().st_mtime_ns == version else None

    def _fetch_tail(self, source: Backend, rel: str, listed: Listed, have: int) -> _Staged | None:
        """Append the object's bytes from ``have`` on to the copy; None, the copy left as it was, when the
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
            return None
        return _Staged(size - have, None, _Copy(size, version, out.crc if crc is not None else None))

    def _fetch_whole(self, source: Backend, rel: str, listed: Listed) -> _Staged:
        """Download the listed generation into a partial file, to be renamed onto ``dest/rel``."""
        size, version, _ = listed
        path = self.dest / rel
        if path.is_dir():  # a folder of objects below this name: the download could not be renamed onto it
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        # The partial file names the object's generation: a restarted mirror resumes it where the
        # killed one stopped, and only for that same generation. (No "tfevents" in the name: TensorBoard
        # must not read it.)
        stem = f"{PARTIAL_PREFIX}{zlib.crc32(path.name.encode()):08x}-"
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
                source.download_range(join(self.source, rel), out, start, size, generation=version)
        except (PreconditionFailed, FileNotFoundError):
            partial.unlink(missing_ok=True)  # that generation is gone: nothing to resume
            raise
        return _Staged(size - start, partial, _Copy(size, version, out.crc if start == 0 else None))
