"""A real MLflow tracking server (`mlflow server` of the test lock's mlflow 3.17.2) on loopback: a sqlite
backend and artifacts served over HTTP (the server's default --serve-artifacts), one uvicorn worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.gcs import free_port, wait_for_http

# Cold start measured at 60 s on this 2-core machine under load (migrations, then uvicorn).
START_SECONDS = 240.0


class MlflowServer:
    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        folder.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination", str(folder / "artifacts"),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
        ]  # fmt: skip
        self._log = open(folder / "server.log", "wb")  # noqa: SIM115 (closed in stop)
        # Its own process group: the server forks uvicorn's processes, and a kill takes them all.
        self.proc = subprocess.Popen(command, stdout=self._log, stderr=self._log, start_new_session=True)
        wait_for_http(f"{self.url}/health", timeout=START_SECONDS, proc=self.proc)

    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.url)

    def kill(self) -> None:
        """Gone at once, as a crashed or deleted server pod."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
