"""Mirror a bucket prefix into a local folder, incrementally: the TensorBoard pod's sidecar.

The mirror itself is trainboard.storage.BucketMirror (why it exists: its docstring); this is its command,
run by the TensorBoard Deployment.

``python -m trainboard.bucket_mirror --source gs://BUCKET/PREFIX/tensorboard --dest /logs``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from trainboard import storage
from trainboard.storage import BucketMirror


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
