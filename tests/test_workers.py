"""Multi-worker training: the `workers` parameter, its checks and what each worker is told."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from tests.support.cli import in_process, last_json_line, trainboard
from tests.support.events import epoch_steps
from tests.support.kfp_server import KFPServer
from tests.support.training import FAST
from tests.support.workers import workers_command
from trainboard.artifacts.training_state import load_state
from trainboard.components.train.cluster_spec import (
    INDEX_ENV,
    PORT,
    PORTS_ENV,
    TRAINJOB_ENV,
    tf_config,
    worker_index,
)
from trainboard.components.train.core import THROWAWAY_ENV

SCHEDULE = ["schedule", "create", "--name", "n", "--cron", "0 0 3 * * *"]
BAD_WORKERS = [
    (["local", "--workers", "0"], "--workers: must be greater than 0, got 0"),
    (["local", "--workers", "two"], "--workers: invalid int value: 'two'"),
    (["local", "--workers", "1000"], "--workers: must be at most 64, got 1000"),
    (["local", "--workers", "3", "--batch-size", "32"], "batch_size 32 must be a multiple of workers 3"),
    (["submit", "--param", "workers=-2"], "--param: workers=-2: must be greater than 0, got -2"),
    (["submit", "--param", "workers=two"], "--param: workers='two' is not an integer"),
    ([*SCHEDULE, "--param", "workers=65"], "--param: workers=65: must be at most 64, got 65"),
]


@pytest.mark.parametrize(("command", "words"), BAD_WORKERS, ids=[" ".join(c[1:]) for c, _ in BAD_WORKERS])
def test_bad_worker_counts_exit_2_before_any_work(tmp_path, monkeypatch, capsys, command, words):
    monkeypatch.chdir(tmp_path)
    kfp = KFPServer()
    try:
        if command[0] == "local":
            command = [*command, "--no-serve", "--root", str(tmp_path / "root")]
        else:
            command = [*command, "--endpoint", kfp.url, "--param", "root=gs://team-bucket/trainboard"]
        code, out, err = in_process(capsys, *command)
    finally:
        kfp.stop()
    assert (code, out) == (2, "")
    [message] = err.strip().splitlines()[-1:]
    named = "schedule create" if command[0] == "schedule" else command[0]
    assert message.startswith(f"trainboard {named}: error: ") and words in message, err
    assert kfp.requests == [] and list(tmp_path.iterdir()) == [], "nothing sent or written"


# What each worker is told (components/train/cluster_spec.py), and its share of the data.


def test_tf_config_on_loopback_ports_and_in_a_trainjobs_pods():
    local = json.loads(tf_config(2, {INDEX_ENV: "1", PORTS_ENV: "5001,5002"}))
    assert local == {
        "cluster": {"worker": ["127.0.0.1:5001", "127.0.0.1:5002"]},
        "task": {"type": "worker", "index": 1},
    }
    pod = json.loads(tf_config(3, {INDEX_ENV: "0", TRAINJOB_ENV: "tb-abc-train"}))
    assert pod["cluster"]["worker"] == [f"tb-abc-train-node-0-{i}.tb-abc-train:{PORT}" for i in range(3)]
    assert pod["task"] == {"type": "worker", "index": 0}
    assert worker_index(json.dumps(pod)) == 0 and worker_index(json.dumps(local)) == 1
    assert worker_index("") == 0, "no TF_CONFIG: one worker, the chief"


@pytest.mark.parametrize(
    ("workers", "environ", "words"),
    [
        (2, {INDEX_ENV: "2", PORTS_ENV: "1,2"}, "JOB_COMPLETION_INDEX='2' is not a worker index below 2"),
        (2, {PORTS_ENV: "1,2"}, "JOB_COMPLETION_INDEX='' is not a worker index"),
        (2, {INDEX_ENV: "-1", PORTS_ENV: "1,2"}, "is not a worker index"),
        (3, {INDEX_ENV: "0", PORTS_ENV: "1,2"}, "does not name 3 ports"),
        (2, {INDEX_ENV: "0"}, "a worker needs TRAINBOARD_WORKER_PORTS (local) or TRAINBOARD_TRAINJOB"),
    ],
)
def test_a_worker_told_too_little_says_what_is_missing(workers, environ, words):
    with pytest.raises(ValueError) as error:
        tf_config(workers, environ)
    assert words in str(error.value)


def test_each_worker_reads_an_equal_disjoint_share(demo_data):
    from trainboard.components.train.input_pipeline import load_split, worker_share

    assert worker_share(961, 64, (1, 2)) == (480, 32)
    shares = []
    for index in (0, 1):
        batches = list(load_split(demo_data, "train", 16, 32, worker=(index, 2)))
        shares.append({images.numpy().tobytes() for batch, _ in batches for images in batch})
    everything = {
        images.numpy().tobytes() for batch, _ in load_split(demo_data, "train", 16, 64) for images in batch
    }
    assert len(shares[0]) == len(shares[1]) == len(everything) // 2
    assert not shares[0] & shares[1] and shares[0] | shares[1] == everything


STEP_SCRIPT = """
import json, os, sys
import keras, numpy as np, tensorflow as tf
workers = int(sys.argv[2])
strategy = tf.distribute.MultiWorkerMirroredStrategy() if workers > 1 else tf.distribute.get_strategy()
from trainboard.components.train import multiworker_keras
from trainboard.components.train.input_pipeline import fit_split
multiworker_keras.apply()
with strategy.scope():
    layers = [keras.layers.Flatten(), keras.layers.Rescaling(1 / 255), keras.layers.Dense(4, "softmax")]
    model = keras.Sequential([keras.Input((16, 16, 3)), *layers])
    layers[-1].kernel.assign(np.zeros((768, 4)))
    model.compile(keras.optimizers.SGD(0.05), "categorical_crossentropy")
data = fit_split(strategy, workers, sys.argv[1], "train", image_size=16, batch_size=32, classes=4)
model.fit(data, epochs=1, verbose=0)
print("weights", json.dumps([w.tolist() for w in model.get_weights()]))
"""


@pytest.mark.slow
def test_an_epoch_on_two_workers_is_the_epoch_one_process_trains_on_the_same_global_batches(demo_data):
    """Not shuffled, the two workers' batches of a step together are the one-process batch of that step
    (worker 0 the even records, worker 1 the odd): the weights after an epoch must agree. Fed a batched
    dataset instead of fit_split's per-replica one, each worker trained on half of its batches."""
    from trainboard.components.train.local_workers import free_ports

    ports = ",".join(map(str, free_ports(2)))
    run = [sys.executable, "-c", STEP_SCRIPT, demo_data]
    one = subprocess.run([*run, "1"], capture_output=True, text=True, check=True, timeout=120)
    two = [
        subprocess.Popen(
            [*run, "2"],
            env={**os.environ, "TF_CONFIG": tf_config(2, {INDEX_ENV: str(i), PORTS_ENV: ports})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in two]
    assert [p.returncode for p in two] == [0, 0]
    weights = [json.loads(out.split("weights ", 1)[1]) for out in (one.stdout, *outputs)]
    assert weights[1] == weights[2], "both workers end with the same weights"
    for single, multi in zip(weights[0], weights[1], strict=True):
        assert np.allclose(single, multi, atol=1e-5), "the same steps as one process on the global batch"


# Keras 3 + MultiWorkerMirroredStrategy (components/train/multiworker_keras.py, keras-team/keras#20585).


def test_the_keras_workaround_still_applies_to_the_installed_keras():
    """The functions it replaces are still those it was written for (keras/src/backend/tensorflow/
    trainer.py, Keras 3.15.1): a new Keras fails here until someone looks whether #20585 is fixed."""
    from trainboard.components.train import multiworker_keras

    assert multiworker_keras.keras_sources() == multiworker_keras.REPLACED_SOURCES


FIT_SCRIPT = """
import json, os, sys
os.environ["TF_CONFIG"] = sys.argv[1]
import keras, numpy as np, tensorflow as tf
strategy = tf.distribute.MultiWorkerMirroredStrategy()
if sys.argv[2] == "patched":
    from trainboard.components.train import multiworker_keras
    multiworker_keras.apply()
keras.utils.set_random_seed(0)
with strategy.scope():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
x = np.random.default_rng(0).normal(size=(128, 8)).astype("float32")
ds = tf.data.Dataset.from_tensor_slices((x, (x[:, 0] > 0).astype("int32"))).batch(16)
model.fit(ds, epochs=1, verbose=0)
print("weights", json.dumps([float(w.sum()) for w in model.get_weights()]))
"""


def fit_on_two_workers(mode: str) -> list[subprocess.CompletedProcess]:
    from trainboard.components.train.local_workers import free_ports

    ports = ",".join(map(str, free_ports(2)))
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", FIT_SCRIPT, tf_config(2, {INDEX_ENV: str(i), PORTS_ENV: ports}), mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    return [subprocess.CompletedProcess(p.args, p.wait(120), *p.communicate()) for p in processes]


@pytest.mark.slow
def test_keras_fit_under_multiworker_fails_without_the_workaround_and_works_with_it():
    """The day this fails on its first assertion, Keras's fit works under MultiWorkerMirroredStrategy:
    delete components/train/multiworker_keras.py."""
    for done in fit_on_two_workers("unpatched"):
        assert done.returncode != 0, "Keras fits without the workaround now (#20585 fixed?): delete it"
        assert "Attempt to convert a value (PerReplica" in done.stderr, done.stderr[-2000:]
    patched = fit_on_two_workers("patched")
    assert [p.returncode for p in patched] == [0, 0], patched[0].stderr[-2000:]
    assert patched[0].stdout == patched[1].stdout, "both workers end with the same weights"


# For real on this machine: two worker processes on loopback ports (components/train/local_workers.py).


def same_weights(first: Path, second: Path) -> bool:
    import keras
    import numpy as np

    a, b = (keras.models.load_model(path / "model.keras").get_weights() for path in (first, second))
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def event_file_writers(folder: Path) -> set[str]:
    """The process ids in the names of the training's TensorBoard event files under ``folder`` (TensorFlow
    names each events.out.tfevents.TIME.HOST.PID.N.v2; evaluation/ is the evaluate task's)."""
    files = [p for p in folder.rglob("*.tfevents.*") if "evaluation" not in p.parts]
    return {path.name.rsplit(".", 3)[1] for path in files}


@pytest.mark.slow
def test_trainboard_local_on_two_workers_is_one_run_with_identical_weights(tmp_path, tensorboard_factory):
    root, throwaway = tmp_path / "root", tmp_path / "throwaway"
    env = {**os.environ, THROWAWAY_ENV: str(throwaway)}  # keep what worker 1 wrote, to compare
    done = trainboard(
        "local", "--workers", "2", "--epochs", "3", "--no-serve", "--json", "--root", str(root),
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = last_json_line(done.stdout)
    run = result["run"]
    assert result["promoted"] and result["metrics"]["test_accuracy"] > 0.25
    steps = ("prepare-data", "train", "evaluate", "promote")
    assert all(f"trainboard: {step}: done in" in done.stderr for step in steps), done.stderr
    assert done.stderr.count("trainboard: train: epoch ") == 3, "the chief's epochs, once each"
    assert "trainboard: train: 2 workers, a process each on this machine\n" in done.stderr, "says it"
    # Identical weights on both workers after the last step, compared.
    assert same_weights(root / "models" / run, throwaway / "worker-1" / "model")
    # Only the chief wrote under the root: one process wrote its event files, worker 1 wrote its own.
    chief, other = event_file_writers(root / "tensorboard" / run), event_file_writers(throwaway / "worker-1")
    assert len(chief) == 1 and len(other) == 1 and chief != other
    assert sorted(p.name for p in (root / "checkpoints" / run).iterdir()) == [  # + promote's outcome
        "epoch-0003.keras",
        "outcome.json",
        "state.json",
    ]
    # TensorBoard shows one run: its train, validation and evaluation, each epoch once.
    tb = tensorboard_factory(str(root / "tensorboard"))
    for split in ("train", "validation"):
        points = tb.wait_for_scalars(f"{run}/{split}", "epoch_loss", 3)
        assert [int(step) for _, step, _ in points] == [0, 1, 2]
    tb.wait_for_scalars(f"{run}/evaluation", "test_accuracy", 1)
    assert {name.split("/")[0] for name in tb.get("/data/runs")} - {"_trend"} == {run}


def child_worker(parent: int, index: int, timeout: float = 60) -> int:
    """The pid of worker ``index`` that process ``parent`` started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in Path("/proc").iterdir():
            with contextlib.suppress(OSError):
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if ppid == parent and f"{INDEX_ENV}={index}".encode() in (proc / "environ").read_bytes():
                    return int(proc.name)
        time.sleep(0.1)
    raise AssertionError(f"no worker {index} under process {parent}")


@pytest.mark.slow
def test_a_worker_killed_mid_epoch_fails_the_run_naming_it_and_a_rerun_resumes(demo_data, tmp_path):
    root = tmp_path / "root"
    config = {**asdict(FAST), "epochs": 3, "batch_size": 32, "workers": 2}
    command = workers_command(demo_data, tmp_path / "model", str(root), "r", config)
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    for line in first.stdout:
        output.append(line)
        if line.startswith("worker 1: Epoch 2/3"):
            time.sleep(0.5)  # into the epoch
            os.kill(child_worker(first.pid, 1), signal.SIGKILL)
            break
    output += first.stdout.readlines()
    assert first.wait(60) != 0
    [failure] = [
        line for line in output if line.startswith("trainboard.components.train.local_workers.WorkerFailed")
    ]
    assert failure.strip() == (
        "trainboard.components.train.local_workers.WorkerFailed: worker 1 of 2 was killed by SIGKILL; run it "
        "again to resume from the chief's last committed epoch"
    )
    assert load_state(str(root), "r").epoch == 1, "the chief's last commit: epoch 1"
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    state = load_state(str(root), "r")
    assert (state.epoch, state.attempt) == (3, 2), "resumed after epoch 1, by the second attempt"
    assert epoch_steps(str(root / "tensorboard" / "r")) == [0, 1, 2], "each epoch once in TensorBoard"


def test_a_resume_with_another_worker_count_is_refused_naming_it():
    """docs/pipeline.md says why: the same global batch, but not the same training."""
    from dataclasses import replace

    from trainboard.artifacts.training_state import TrainingState, check_same_start, started_with
    from trainboard.errors import UsageError

    state = TrainingState(epoch=1, started_with=started_with(FAST, "demo"))
    check_same_start(state, started_with(FAST, "demo"), "root", "r")
    with pytest.raises(UsageError, match=r"workers 1 -> 2"):
        check_same_start(state, started_with(replace(FAST, workers=2), "demo"), "root", "r")
