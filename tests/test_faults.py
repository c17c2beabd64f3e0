"""Faults a nightly run meets: a storage outage mid-training, preemption at three points, a TensorBoard
restart, two runs writing into one root at once. Each trains small_cnn at 16 px (mobilenet_v3_small at 32 px
for freeze-then-fine-tune) in real subprocesses."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import keras
import pytest
import requests

from tests.support.events import epoch_steps, event_files, records, scalars, texts
from tests.support.gcs import BUCKET, fake_gcs_command, free_port, wait_for_http
from tests.support.training import train_command
from trainboard import faults, storage
from trainboard.artifacts.model import load_trained
from trainboard.backbones import backbone

EPOCHS = 4
CONFIG = {"model": "small_cnn", "epochs": EPOCHS, "batch_size": 16, "image_size": 16, "sync_seconds": 0.2}
STEPS = list(range(EPOCHS))
STEPS_PER_EPOCH = 960 // CONFIG["batch_size"]  # the demo's training split


def run_state(checkpoint_dir: str) -> dict:
    uri = storage.join(checkpoint_dir, "state.json")
    return json.loads(storage.read_bytes(uri)) if storage.exists(uri) else {"epoch": 0}


def wait_for_commit(proc: subprocess.Popen, checkpoint_dir: str, epoch: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while run_state(checkpoint_dir)["epoch"] < epoch:
        assert proc.poll() is None, f"training ended before committing epoch {epoch}"
        assert time.monotonic() < deadline, f"no commit of epoch {epoch} within {timeout}s"
        time.sleep(0.05)


def wait_for_batch(proc: subprocess.Popen, run_dir: str, step: int, timeout: float = 300) -> None:
    """Until the per-batch scalars in the root reach ``step``."""
    deadline = time.monotonic() + timeout
    while max(epoch_steps(run_dir, "train", "batch_loss"), default=0) < step:
        assert proc.poll() is None, f"training ended before batch {step} reached the root"
        assert time.monotonic() < deadline, f"batch {step} not in the root within {timeout}s"
        time.sleep(0.05)


def wait_for_line(proc: subprocess.Popen, text: str) -> None:
    """Read the process's stderr until ``text`` (the pipe's own end stops it when the process dies)."""
    for line in proc.stderr:
        if text in line:
            return
    raise AssertionError(f"the trainer exited ({proc.wait()}) before printing {text!r}")


def assert_finished_exactly(root: str, run: str, model_dir: Path) -> None:
    """Every epoch once in TensorBoard, the last commit complete, no leftovers of a killed attempt."""
    run_dir = storage.join(root, "tensorboard", run)
    assert epoch_steps(run_dir) == STEPS, "one point per epoch: no gap, no duplicate"
    assert epoch_steps(run_dir, "validation") == STEPS
    checkpoint_dir = storage.join(root, "checkpoints", run)
    assert run_state(checkpoint_dir)["epoch"] == EPOCHS
    names = [uri.rsplit("/", 1)[-1] for uri in storage.list_files(checkpoint_dir)]
    assert names == [f"epoch-{EPOCHS:04d}.keras", "state.json"]
    assert not [u for u in storage.list_files(run_dir) if ".append-" in u], "a compose part was left behind"
    assert json.loads((model_dir / "trainboard_model.json").read_text())["epochs"] == EPOCHS


# --- storage outage ----------------------------------------------------------------------------------------


def test_unit_retry_is_bounded_and_logged(caplog):
    raised = []

    def refused():
        raised.append(requests.ConnectionError("connection refused"))
        raise raised[-1]

    started = time.monotonic()
    with (
        caplog.at_level(logging.WARNING, "trainboard.storage"),
        pytest.raises(requests.ConnectionError) as failure,
    ):
        storage.gcs.retrying("write gs://b/x", refused, timeout=2.0)
    assert time.monotonic() - started < 2.5, "bounded by the timeout"
    assert failure.value is raised[-1], "the last original error, not api-core's RetryError"
    assert len(raised) >= 2, "the first backoff (at most 0.5 s) always fits in 2 s"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"storage: write gs://b/x: attempt {n} failed (connection refused); retrying"
        for n in range(1, len(raised))
    ], "every retry, and only those, logged with its attempt and error"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and re.fullmatch(
        rf"storage: write gs://b/x failed after {len(raised)} attempts in \d s: connection refused", errors[0]
    )


def test_append_whose_compose_answer_was_lost_is_not_applied_twice(gcs, tmp_path, monkeypatch):
    """The compose reached the bucket but its answer did not: the retry must see that, not compose again."""
    from google.cloud.storage import Blob

    local = tmp_path / "logs"
    local.mkdir()
    events = local / "events.out.tfevents.1"
    events.write_bytes(b"first-")
    mirror = storage.DirectoryMirror(local, f"gs://{BUCKET}/tb")
    mirror.sync()
    real_compose, lost = Blob.compose, []

    def compose_then_lose_the_answer(self, *args, **kwargs):
        real_compose(self, *args, **kwargs)
        if not lost:
            lost.append(True)
            raise requests.ConnectionError("connection reset by peer")

    monkeypatch.setattr(Blob, "compose", compose_then_lose_the_answer)
    with events.open("ab") as f:
        f.write(b"second")
    mirror.sync()
    assert lost and storage.read_bytes(f"gs://{BUCKET}/tb/events.out.tfevents.1") == b"first-second"
    assert storage.list_files(f"gs://{BUCKET}/tb") == [f"gs://{BUCKET}/tb/events.out.tfevents.1"]


@pytest.mark.slow
def test_20s_storage_outage_mid_training_every_byte_reaches_the_bucket(demo_data, tmp_path, monkeypatch):
    port, data = free_port(), tmp_path / "gcs-data"
    data.mkdir()
    url = f"http://127.0.0.1:{port}"

    def start_server() -> subprocess.Popen:
        server = subprocess.Popen(fake_gcs_command(port, data), stderr=subprocess.DEVNULL)
        wait_for_http(f"{url}/storage/v1/b", proc=server)
        return server

    server = start_server()
    env = {**os.environ, "STORAGE_EMULATOR_HOST": url, "TRAINBOARD_KEEP_LOGS": str(tmp_path / "written")}
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)  # this process reads the bucket too
    storage.gcs.set_client(None)
    root, run = f"gs://{BUCKET}/root", "outage"
    trainer = None
    try:
        storage.gcs.client().create_bucket(BUCKET)
        config = {**CONFIG, "epochs": 6}
        command = train_command(demo_data, tmp_path / "model", root, run, config)
        trainer = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        wait_for_commit(trainer, storage.join(root, "checkpoints", run), 1)
        server.terminate()
        server.wait(10)
        time.sleep(20)
        server = start_server()
        _, stderr = trainer.communicate(timeout=300)
        assert trainer.returncode == 0, stderr[-3000:]

        written = {p.relative_to(tmp_path / "written").as_posix(): p.read_bytes()
                   for p in (tmp_path / "written").rglob("*") if p.is_file()}  # fmt: skip
        run_dir = storage.join(root, "tensorboard", run)
        in_bucket = {uri[len(run_dir) + 1 :]: storage.read_bytes(uri) for uri in storage.list_files(run_dir)}
        assert in_bucket.keys() == written.keys()
        for name, data_written in written.items():
            assert in_bucket[name] == data_written, f"{name} differs from what the trainer wrote"
            assert sum(len(r) + 16 for r in records(data_written)) == len(data_written), "torn record"
        assert epoch_steps(run_dir) == list(range(6))
        attempts = [int(n) for n in re.findall(r"storage: .*: attempt (\d+) failed", stderr)]
        assert attempts, "the outage must show as logged retries"
        assert max(attempts) <= 20, "bounded: 120 s of backoff at most 8 s apart"
    finally:
        if trainer and trainer.poll() is None:
            trainer.kill()
        server.terminate()
        server.wait(10)
        storage.gcs.set_client(None)


# --- preemption --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("point", ["mid-epoch", "checkpoint", "upload"])
def test_sigkilled_trainer_resumes_exactly(request, demo_data, tmp_path, point):
    """SIGKILL while an epoch trains (local root), between a checkpoint's upload and its commit, and
    between a log tail's upload and its compose (gs:// root); the re-run finishes every epoch once."""
    if point == "mid-epoch":
        root, env = str(tmp_path / "root"), dict(os.environ)
    else:
        root, env = f"gs://{BUCKET}/root", request.getfixturevalue("gcs").env()
        # The second commit, and the first append (with syncs at epoch ends only: epoch 2's end): the
        # first epoch is committed, the kill loses work.
        env[faults.FAULT_PAUSE_ENV] = {"checkpoint": "checkpoint:2", "upload": "upload:1"}[point]
    config = {**CONFIG, "sync_seconds": 60} if point == "upload" else CONFIG
    if point == "mid-epoch":  # per-batch scalars, synced every 0.2 s: they show when epoch 2 is running
        config = {**CONFIG, "batch_scalars_every": 1}
    run, model_dir = "resumed", tmp_path / "model"
    command = train_command(demo_data, model_dir, root, run, config)
    checkpoint_dir = storage.join(root, "checkpoints", run)
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        if point == "mid-epoch":
            # Into the second epoch, whatever the machine's speed: some of its batches' logs already sent.
            wait_for_batch(proc, storage.join(root, "tensorboard", run), STEPS_PER_EPOCH + 1)
        else:
            wait_for_line(proc, f"fault pause at {point}")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    killed_at = run_state(checkpoint_dir)["epoch"]
    assert killed_at < EPOCHS, "the kill came too late to test a resume"
    if point == "checkpoint":
        uncommitted = storage.join(checkpoint_dir, f"epoch-{killed_at + 1:04d}.keras")
        assert storage.exists(uncommitted)
        storage.write_bytes(uncommitted, storage.read_bytes(uncommitted)[:1000])  # a torn write: never load

    env.pop(faults.FAULT_PAUSE_ENV, None)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_finished_exactly(root, run, model_dir)
    run_dir = storage.join(root, "tensorboard", run)
    assert len(event_files(run_dir, "train")) == 2, "killed, then resumed"
    assert texts(run_dir, "resume") == [
        (
            killed_at,
            f"attempt 2: resumed after epoch {killed_at} of {EPOCHS}; epoch {killed_at + 1} is trained again "
            "from its start",
        )
    ], "the series says where the second attempt took over"
    assert run_state(checkpoint_dir)["attempt"] == 2
    if point == "mid-epoch":  # the killed epoch's batches were cut back: each step once, none missing
        assert epoch_steps(run_dir, "train", "batch_loss") == list(range(1, EPOCHS * STEPS_PER_EPOCH + 1))


@pytest.mark.slow
@pytest.mark.parametrize("killed_after", [1, 2], ids=["at-the-boundary", "mid-fine-tune"])
def test_sigkilled_freeze_then_fine_tune_resumes_in_its_phase(demo_data, tmp_path, killed_after):
    """Killed right after the frozen epoch (the fine-tuning not begun) or after the first fine-tuning
    epoch (its optimizer in the checkpoint): the re-run finishes the same series, each phase begun once."""
    source = backbone("mobilenet_v3_small", 32)
    source.save_weights(tmp_path / "w.weights.h5")
    config = {
        **CONFIG,
        "model": "mobilenet_v3_small",
        "image_size": 32,
        "epochs": 3,
        "lr_schedule": "constant",
        "weights": str(tmp_path / "w.weights.h5"),
        "freeze_epochs": 1,
        "fine_tune_layers": 2,
        "fine_tune_learning_rate": 1e-4,
    }
    root, run, model_dir = str(tmp_path / "root"), "tuned", tmp_path / "model"
    command = train_command(demo_data, model_dir, root, run, config)
    env = {**os.environ, faults.FAULT_PAUSE_ENV: f"checkpoint:{killed_after + 1}"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_line(proc, "fault pause at checkpoint")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert run_state(storage.join(root, "checkpoints", run))["epoch"] == killed_after

    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = storage.join(root, "tensorboard", run)
    assert epoch_steps(run_dir) == [0, 1, 2] and epoch_steps(run_dir, "validation") == [0, 1, 2]
    rates = sorted(
        point
        for uri in event_files(run_dir, "train")
        for point in scalars(storage.read_bytes(uri), "epoch_learning_rate")
    )
    assert rates == [(0, pytest.approx(3e-3)), (1, pytest.approx(1e-4)), (2, pytest.approx(1e-4))]
    assert [(step, text.split(":")[1].split("(")[0].strip()) for step, text in texts(run_dir, "phase")] == [
        (0, "frozen"),
        (1, "fine-tune"),
    ]
    base = next(layer for layer in load_trained(str(model_dir))[0].layers if isinstance(layer, keras.Model))
    moved = {
        w.path.split("/")[0]
        for w, s in zip(base.weights, source.weights, strict=True)
        if not (w.numpy() == s.numpy()).all()
    }
    top = [
        layer.name
        for layer in base.layers
        if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)
    ]
    # Trainable after the resume too: the top 2 (random weights here: a layer may get no gradient, so
    # what moved is a subset) and nothing else moved.
    assert {w.path.split("/")[0] for w in base.trainable_weights} == set(top[-2:])
    assert moved and moved <= set(top[-2:]), moved


# --- TensorBoard restart -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_tensorboard_killed_and_restarted_serves_everything(gcs, demo_data, tmp_path, tensorboard_factory):
    root = f"gs://{BUCKET}/root"
    for run in ("a", "b"):
        done = subprocess.run(
            train_command(demo_data, tmp_path / run, root, run, {**CONFIG, "epochs": 2}),
            env=gcs.env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    logdir = storage.join(root, "tensorboard")
    first = tensorboard_factory(logdir, gcs.env())
    before = {run: first.wait_for_scalars(f"{run}/train", "epoch_loss", 2) for run in ("a", "b")}
    first.process.kill()  # SIGKILL: no clean shutdown
    first.process.wait()
    second = tensorboard_factory(logdir, gcs.env(), port=first.port)
    assert second.port == first.port
    after = {run: second.wait_for_scalars(f"{run}/train", "epoch_loss", 2) for run in ("a", "b")}
    assert after == before


# --- two runs into one root --------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_runs_at_once_into_one_root_keep_their_files_apart(gcs, demo_data, tmp_path):
    root = f"gs://{BUCKET}/root"
    procs = {
        run: subprocess.Popen(
            train_command(demo_data, tmp_path / run, root, run, {**CONFIG, "epochs": 2}),
            env=gcs.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for run in ("alpha", "beta")
    }
    for proc in procs.values():
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-3000:]
    for run, proc in procs.items():
        # TensorFlow names each event file ...tfevents.<time>.<host>.<pid>.<n>.v2: the writer's pid.
        writer = re.compile(rf"\.tfevents\.\d+\.[^/]+\.{proc.pid}\.\d+\.v2$")
        run_dir = storage.join(root, "tensorboard", run)
        files = storage.list_files(run_dir)
        assert files and all(writer.search(uri) for uri in files), (run, proc.pid, files)
        state = run_state(storage.join(root, "checkpoints", run))
        assert state["epoch"] == 2 and all(writer.search(name) for name in state["logs"])
        assert epoch_steps(run_dir) == [0, 1]
    prefixes = {"/".join(uri.split("/")[4:6]) for uri in storage.list_files(root)}
    assert prefixes == {"tensorboard/alpha", "tensorboard/beta", "checkpoints/alpha", "checkpoints/beta"}
