"""The two mirrors of TensorBoard logs: DirectoryMirror sends a growing local folder up to the run's
storage while training writes it; BucketMirror brings a bucket prefix down into the TensorBoard pod.

Both rely on event files only growing: they move only the bytes added since the last sync.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from trainboard.storage.backends import backend_for
from trainboard.storage.uris import join

# GCS allows at most 1024 components in a composite object; start over well before that (local files
# too: one rule for both backends).
_MAX_COMPOSE_APPENDS = 1000
# TensorBoard loads files whose name holds "tfevents": a file being downloaded must not look like one.
_PARTIAL_PREFIX = ".mirror-partial-"


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


@dataclass
class BucketMirror:
    """Mirror a bucket prefix into a local folder, incrementally: the TensorBoard pod's sidecar
    (``python -m trainboard.bucket_mirror``).

    TensorBoard reading gs:// itself lists every run folder and stats every event file at each reload (tens
    of storage requests a reload for a team's bucket, all day, even when nothing changes). This mirror sends
    one listing request per 1000 objects per interval, and downloads only what changed: the new bytes of a
    grown event file (one ranged read) or a new file. TensorBoard then reads the local copy.
    """

    source: str
    dest: Path
    _copied: dict[str, tuple[int, int]] = field(default_factory=dict)

    def sync(self) -> int:
        """Bring ``dest`` up to date with ``source``; return the number of bytes downloaded."""
        source = backend_for(self.source)
        listing = source.list_versions(self.source)
        received = 0
        for rel, (size, version) in sorted(listing.items()):
            copied = self._copied.get(rel)
            if copied == (size, version):
                continue
            path = self.dest / rel
            uri = join(self.source, rel)
            if copied and size > copied[0] and path.is_file() and path.stat().st_size == copied[0]:
                # Event files only grow: fetch the new tail only.
                tail = source.read_bytes(uri, start=copied[0])
                with path.open("ab") as f:
                    f.write(tail)
                received += len(tail)
            else:
                data = source.read_bytes(uri)
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_name(_PARTIAL_PREFIX + str(os.getpid()))
                partial.write_bytes(data)
                partial.replace(path)
                received += len(data)
            self._copied[rel] = (path.stat().st_size, version)
        for rel in set(self._copied) - set(listing):
            (self.dest / rel).unlink(missing_ok=True)
            del self._copied[rel]
        return received
