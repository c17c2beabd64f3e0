"""Peak memory of both mirrors over one large event file on fake-gcs-server: the team TensorBoard's bucket
mirror fetching it, and the trainer's DirectoryMirror uploading it, then what is appended to it.

    .venv/bin/python bench/mirror_memory.py [--mib 300] [--append-mib 100]

Each runs in its own process (``python -m trainboard.board.bucket_mirror --once``;
tests/support/upload_memory.py); its peak is that process's VmHWM (ru_maxrss of a child would also count
the parent it was forked from).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.support
from tests.support.gcs import MIRROR_PEAK_RSS, fake_gcs_command, free_port, wait_for_http  # noqa: E402
from tests.support.upload_memory import upload_peak_rss  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=300, help="size of the event file (default: 300 MiB)")
    parser.add_argument(
        "--append-mib", type=int, default=100, help="then appended to it, uploading (default: 100 MiB)"
    )
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(fake_gcs_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_http(f"{url}/storage/v1/b", proc=server)
        os.environ["STORAGE_EMULATOR_HOST"] = url
        from trainboard.storage import gcs

        with tempfile.TemporaryDirectory() as tmp:
            big = Path(tmp) / "events.out.tfevents.big"
            with big.open("wb") as f:
                for _ in range(args.mib):
                    f.write(os.urandom(1024 * 1024))
            bucket = gcs.client().create_bucket("bench-mirror")
            blob = bucket.blob("root/tensorboard/run/train/events.out.tfevents.big", chunk_size=8 * 2**20)
            blob.upload_from_filename(str(big))
            started = time.monotonic()
            mirror = subprocess.run(
                [sys.executable, "-c", MIRROR_PEAK_RSS, "--source=gs://bench-mirror/root/tensorboard",
                 f"--dest={Path(tmp) / 'logs'}", "--once"],
                env=dict(os.environ), stderr=subprocess.PIPE, text=True, check=True,
            )  # fmt: skip
            seconds = time.monotonic() - started
            peak = int(re.search(r"VmHWM (\d+)", mirror.stderr).group(1)) // 1024
            print(
                f"download: one {args.mib} MiB event file: bucket mirror peak RSS {peak} MiB, "
                f"{seconds:.1f} s (process start included)"
            )
            started = time.monotonic()
            peak = upload_peak_rss(
                Path(tmp) / "training", "gs://bench-mirror/up/tensorboard", args.mib, args.append_mib,
                dict(os.environ),
            ) // 2**20  # fmt: skip
            seconds = time.monotonic() - started
            print(
                f"upload: one {args.mib} MiB event file, then {args.append_mib} MiB appended: "
                f"DirectoryMirror peak RSS {peak} MiB, {seconds:.1f} s (writing the file included)"
            )
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
