"""Mirror a bucket prefix into a local folder, incrementally: the TensorBoard pod's sidecar.

TensorBoard reading gs:// itself lists every run folder and stats every event file at each reload (tens of
storage requests a reload for a team's bucket, all day, even when nothing changes). This mirror sends one
listing request per 1000 objects per interval, and downloads only what changed: the new bytes of a grown
event file (one ranged read) or a new file. TensorBoard then reads the local copy.

``python -m trainboard.bucket_mirror --source gs://BUCKET/PREFIX/tensorboard --dest /logs``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from trainboard import storage

# TensorBoard loads files whose name holds "tfevents": a file being downloaded must not look like one.
_PARTIAL_PREFIX = ".mirror-partial-"


@dataclass
class BucketMirror:
    source: str
    dest: Path
    _copied: dict[str, tuple[int, int]] = field(default_factory=dict)

    def sync(self) -> int:
        """Bring ``dest`` up to date with ``source``; return the number of bytes downloaded."""
        listing = storage.list_versions(self.source)
        received = 0
        for rel, (size, version) in sorted(listing.items()):
            copied = self._copied.get(rel)
            if copied == (size, version):
                continue
            path = self.dest / rel
            uri = storage.join(self.source, rel)
            if copied and size > copied[0] and path.is_file() and path.stat().st_size == copied[0]:
                # Event files only grow: fetch the new tail only.
                tail = storage.read_bytes(uri, start=copied[0])
                with path.open("ab") as f:
                    f.write(tail)
                received += len(tail)
            else:
                data = storage.read_bytes(uri)
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m trainboard.bucket_mirror", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--source", required=True, help="gs://BUCKET/PREFIX/tensorboard (or a local folder)")
    parser.add_argument("--dest", required=True, help="local folder that TensorBoard reads")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between listings (default: 5)")
    args = parser.parse_args(argv)
    mirror = BucketMirror(storage.check_uri(args.source), Path(args.dest))
    while True:
        started = time.monotonic()
        try:
            received = mirror.sync()
        except Exception as e:  # a storage hiccup must not stop the mirror; the next interval retries
            print(f"bucket_mirror: sync failed: {e!r}", file=sys.stderr, flush=True)
        else:
            if received:
                print(f"bucket_mirror: {received} bytes from {args.source}", file=sys.stderr, flush=True)
        time.sleep(max(0.0, args.interval - (time.monotonic() - started)))


if __name__ == "__main__":
    main()
