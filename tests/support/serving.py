"""`trainboard serve` in tests: two real models of the demo data (one trained, one its copy with another
head, so their probabilities differ), and the server started as a person starts it, on loopback."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.cli import BIN
from tests.support.training import FAST

REPO = Path(__file__).resolve().parents[2]


def two_models(demo_data: str, out: Path) -> tuple[str, str]:
    """Model folders ``a`` (trained) and ``b`` (a's weights, its head's biases moved: other predictions),
    each with its serving export and example image."""
    import numpy as np

    from trainboard.artifacts.model import MODEL_FILE, MODEL_INFO_FILE, load_trained
    from trainboard.artifacts.serving_export import SERVING_DIR, write_serving_export
    from trainboard.components.train.core import train

    a, b = out / "a", out / "b"
    train(demo_data, str(a), str(out / "scratch-root"), "a", config=FAST)
    shutil.copytree(a, b)
    model, info = load_trained(b)
    head = model.layers[-1]
    head.bias.assign(head.bias.numpy() + np.arange(len(info.class_names), dtype="float32"))
    model.save(b / MODEL_FILE)
    shutil.rmtree(b / SERVING_DIR)
    write_serving_export(model, info.class_names, info.image_size, b)
    (b / MODEL_INFO_FILE).write_text(
        json.dumps({**json.loads((b / MODEL_INFO_FILE).read_text()), "run": "b"})
    )
    return str(a), str(b)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(root: str, port: int, log: Path) -> tuple[subprocess.Popen, list[str]]:
    """`trainboard serve --root ROOT --port PORT` as a person runs it; returns once it answers and has
    printed what to run, with the lines it printed (stdout)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout's trainboard, whatever is installed
    out = log.with_suffix(".out")
    with out.open("w") as stdout, log.open("w") as stderr:
        proc = subprocess.Popen(
            [str(BIN / "trainboard"), "serve", "--root", root, "--port", str(port)],
            stdout=stdout,
            stderr=stderr,
            env=env,
            cwd=REPO,
        )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"trainboard serve exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models/champion", timeout=2)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
            continue
        if "Ctrl-C stops it" in out.read_text():  # its last line, printed once the port listens
            return proc, out.read_text().splitlines()
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"trainboard serve did not answer in 180 s:\n{log.read_text()[-3000:]}")


def post(url: str, body: bytes, timeout: float = 60) -> tuple[int, dict]:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
