"""The Profile tab: a profile written by training's ``profile_batches`` (Keras' TensorBoard callback, as
components/train/core.py sets it) opens in a real TensorBoard with the profile plugin of the team image
(tensorboard-plugin-profile / xprof, pinned in manifests/image/Dockerfile), in the image's environment:
its packages, no TensorFlow."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.support.tensorboard_http import TensorBoard

_TRAIN = """
import sys
import numpy as np
import keras

model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
                          keras.layers.Dense(2)])
model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
x, y = np.random.rand(64, 8, 8, 3).astype("float32"), np.random.randint(0, 2, 64)
# profile_batches "2,3", as components/train/core.py passes it.
callback = keras.callbacks.TensorBoard(sys.argv[1], profile_batch="2,3")
model.fit(x, y, batch_size=8, epochs=1, callbacks=[callback], verbose=0)
"""


def _get(board: TensorBoard, path: str, **params: str) -> object:
    """The plugin gzips some answers."""
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{board.url}{path}{query}", timeout=120) as response:
        body = response.read()
        if response.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
    return json.loads(body)


@pytest.mark.slow  # makes the image's venv (about a minute)
def test_a_profile_from_profile_batches_opens_in_the_profile_plugin(tmp_path, image_python):
    no_tensorflow = subprocess.run([image_python, "-c", "import tensorflow"], capture_output=True)
    assert no_tensorflow.returncode != 0, "the team image has no TensorFlow, nor must its stand-in here"
    logdir = tmp_path / "tensorboard" / "run-1"
    subprocess.run([sys.executable, "-c", _TRAIN, str(logdir)], check=True, timeout=300)
    traces = list(logdir.rglob("*.xplane.pb"))
    assert traces, f"no profile written under {logdir}"

    board = TensorBoard(str(tmp_path / "tensorboard"), python=image_python)
    try:
        listing = _get(board, "/data/plugins_listing")
        assert "profile" in listing, sorted(listing)
        deadline = time.monotonic() + 60
        runs: list = []
        while time.monotonic() < deadline and not runs:
            runs = _get(board, "/data/plugin/profile/runs")
            time.sleep(0.5)
        assert runs, "the profile plugin lists no profile run"
        run = runs[0]
        tools = _get(board, "/data/plugin/profile/run_tools", run=run)
        assert "overview_page" in tools and any(t.startswith("trace_viewer") for t in tools), tools
        hosts = _get(board, "/data/plugin/profile/hosts", run=run, tag="overview_page")
        assert hosts, "no host in the profile"
        host = hosts[0]["hostname"] if isinstance(hosts[0], dict) else hosts[0]
        try:
            page = _get(board, "/data/plugin/profile/data", run=run, tag="overview_page", host=host)
        except urllib.error.HTTPError as e:
            raise AssertionError(f"overview_page: {e.code} {e.read()[:500]!r}") from None
        assert page, "an empty overview page"
    finally:
        board.stop()
