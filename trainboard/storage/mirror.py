"""DirectoryMirror: a growing local folder (TensorBoard event files) sent up to the run's storage while
training writes it. Event files only grow: a sync moves only the bytes added since the last one. (The
other direction, a bucket prefix down into the TensorBoard pod, is the board's: trainboard/board/mirror.py.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from trainboard.storage.backends import backend_for
from trainboard.storage.uris import join

# GCS allows at most 1024 components in a composite object; start over well before that (local files
# too: one rule for both backends).
_MAX_COMPOSE_APPENDS = 1000


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
                target.append(dest, path, state.size, stat.st_size, seq=state.appends)
                state.appends += 1
                sent += stat.st_size - state.size
            else:
                target.upload_file(path, dest, stat.st_size)
                state = self._files[rel] = _MirroredFile()
                sent += stat.st_size
            state.size, state.mtime_ns = stat.st_size, stat.st_mtime_ns
        self.bytes_uploaded += sent
        return sent
