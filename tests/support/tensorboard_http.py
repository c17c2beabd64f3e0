"""`trainboard tensorboard` in a subprocess, queried over HTTP."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

from tests.support.cli import BIN
from tests.support.gcs import free_port, wait_for_http


class TensorBoard:
    """`trainboard tensorboard` in a subprocess, queried over HTTP; with ``python``, the team image's
    command instead (`python -m trainboard.board.tensorboard_server`) run by that interpreter."""

    def __init__(self, logdir: str, env: dict | None = None, port: int = 0, python: str = ""):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = (
            [python, "-m", "trainboard.board.tensorboard_server"]
            if python
            else [str(BIN / "trainboard"), "tensorboard"]
        )
        self.process = subprocess.Popen(
            [*command, "--logdir", logdir, "--port", str(self.port)],
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
