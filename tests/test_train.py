"""The train component's core: models, TensorBoard content, streaming cost, resume after a kill, bad input."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, replace

import keras
import numpy as np
import pytest
from tensorboard.compat.proto import event_pb2

from tests.support.events import epoch_steps, event_files, records, scalars, texts
from tests.support.gcs import BUCKET
from tests.support.training import FAST, train_command
from trainboard import faults, layout, storage
from trainboard.artifacts.model import load_trained
from trainboard.artifacts.training_state import check_checkpoint, load_state
from trainboard.backbones import backbone
from trainboard.component_image import IMAGE
from trainboard.components.train.checkpoints import TRAIN_SECONDS
from trainboard.components.train.core import train
from trainboard.components.train.devices import NoGPU, gpus_requested
from trainboard.components.train.input_pipeline import load_split
from trainboard.components.train.models import backbone_of, build_model
from trainboard.config import MODELS
from trainboard.errors import UsageError
from trainboard.weights import OFFLINE_ENV


def plugins_and_tags(uri: str) -> set[tuple[str, str]]:
    out = set()
    for payload in records(storage.read_bytes(uri)):
        for value in event_pb2.Event.FromString(payload).summary.value:
            out.add((value.metadata.plugin_data.plugin_name, value.tag))
    return out


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_builds_and_trains_a_step_at_its_smallest_size(name):
    size = MODELS[name].min_image_size
    model = build_model(name, num_classes=3, image_size=size)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).uniform(0, 255, (4, size, size, 3)).astype("float32")
    history = model.fit(x, np.array([0, 1, 2, 0]), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.output_shape == (None, 3)


def test_training_logs_scalars_hparams_and_samples_to_the_root(demo_data, tmp_path):
    root = str(tmp_path / "root")
    info = train(demo_data, str(tmp_path / "model"), root, "r1", config=FAST)
    run_dir = f"{root}/tensorboard/r1"
    assert epoch_steps(run_dir) == [0, 1]
    assert epoch_steps(run_dir, "validation") == [0, 1]
    assert epoch_steps(run_dir, "train", "epoch_learning_rate") == [0, 1]
    top = set().union(
        *(plugins_and_tags(u) for u in event_files(run_dir) if "/train/" not in u and "/validation/" not in u)
    )
    assert ("hparams", "_hparams_/session_start_info") in top
    assert ("images", "training_samples") in top
    # The Model artifact: .keras, a SavedModel and metadata that evaluate can use.
    model, meta = load_trained(str(tmp_path / "model"))
    assert (tmp_path / "model" / "saved_model" / "saved_model.pb").is_file()
    assert meta.class_names == ["circle", "square", "triangle", "cross"] and meta.epochs == 2
    assert model.input_shape == (None, 16, 16, 3)
    assert 0 < info.best_val_accuracy <= 1
    # What promote plots and compares: throughput of the epochs after the first (each one's training time
    # committed), what the run was started with, the data per class, the image.
    seconds = load_state(root, "r1").history[TRAIN_SECONDS]
    assert len(seconds) == 2 and all(s > 0 for s in seconds)
    assert meta.images_per_second == pytest.approx(960 / seconds[1])  # the demo's training split
    assert meta.settings["learning_rate"] == FAST.learning_rate and meta.settings["dataset_fingerprint"]
    assert sum(meta.class_counts["train"]) == 960 and len(meta.class_counts["train"]) == 4
    assert meta.image == IMAGE


def test_streaming_to_gcs_uploads_each_byte_about_once(gcs, demo_data, tmp_path):
    config = replace(FAST, epochs=3, sync_seconds=0.05, batch_scalars_every=1)  # many syncs
    info = train(demo_data, str(tmp_path / "model"), f"gs://{BUCKET}/r", "often", config=config)
    assert epoch_steps(f"gs://{BUCKET}/r/tensorboard/often") == [0, 1, 2]
    steps = math.ceil(960 / config.batch_size)  # the demo's training split
    assert load_split(demo_data, "train", 16, config.batch_size).cardinality() == steps, "known to Keras"
    # One step per batch: without a known count Keras begins a phantom step per epoch (1..15, 17..31, ...).
    assert epoch_steps(f"gs://{BUCKET}/r/tensorboard/often", "train", "batch_loss") == list(
        range(1, 3 * steps + 1)
    )
    assert info.log_bytes > 0
    assert info.log_bytes_uploaded / info.log_bytes <= 1.1, (info.log_bytes_uploaded, info.log_bytes)
    assert storage.list_files(f"gs://{BUCKET}/r/checkpoints/often")[-1].endswith("state.json")


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"model": "alexnet"}, "model", ["unknown model 'alexnet'", "vgg16", "efficientnet_b0"]),
        ({"model": "vgg16", "image_size": 16}, "image_size", ["vgg16 accepts: 32 to 512"]),
        ({"epochs": 0}, "epochs", ["greater than 0"]),
        ({"batch_size": -1}, "batch_size", ["greater than 0"]),
        ({"learning_rate": 0.0}, "learning_rate", ["greater than 0"]),
        ({"lr_schedule": "step"}, "lr_schedule", ["constant, cosine"]),
        ({"precision": "fp8"}, "precision", ["mixed_bfloat16"]),
        ({"label_smoothing": 1.0}, "label_smoothing", ["[0, 1)"]),
        ({"model": "vgg16", "image_size": 32, "weights": "s3://x/w.h5"}, "weights", ["s3://"]),
        ({"model": "vgg16", "image_size": 32, "weights": "imagenet21k"}, "weights", ["none, imagenet, or a"]),
        ({"weights": "imagenet"}, "weights", ["small_cnn has no pretrained weights"]),
        ({"model": "vgg16", "image_size": 32, "freeze_epochs": 1}, "freeze_epochs", ["untrained backbone"]),
        ({"freeze_epochs": 3}, "freeze_epochs", ["[0, epochs=2]"]),
        ({"fine_tune_layers": -1}, "fine_tune_layers", ["0 or more"]),
        ({"fine_tune_learning_rate": 0.0}, "fine_tune_learning_rate", ["greater than 0"]),
    ],
)
def test_bad_training_input_is_refused_before_training(demo_data, tmp_path, change, field, words):
    with pytest.raises(UsageError) as error:
        train(
            demo_data, str(tmp_path / "model"), str(tmp_path / "root"), "bad", config=replace(FAST, **change)
        )
    assert error.value.field == field
    for word in words:
        assert word in str(error.value)
    assert not (tmp_path / "root").exists() and not (tmp_path / "model").exists()


def test_a_gpu_run_that_finds_no_gpu_stops_before_any_work(demo_data, tmp_path):
    """This machine has no GPU: what a pod without its limit (or with a CUDA mismatch) meets."""
    assert gpus_requested("nvidia.com/gpu", "2") == 2 and gpus_requested("NVIDIA_L4", "1") == 1
    assert gpus_requested("cloud-tpus.google.com/v3", "8") == 0 and gpus_requested("nvidia.com/gpu", "0") == 0
    with pytest.raises(NoGPU, match=r"asked for 1 GPU.* sees none.*no GPU limit.*CUDA"):
        train(demo_data, str(tmp_path / "model"), str(tmp_path / "root"), "gpu", config=FAST, gpus=1)
    assert not (tmp_path / "root").exists() and not (tmp_path / "model").exists()


MOBILENET = replace(FAST, model="mobilenet_v3_small", image_size=32, lr_schedule="constant")


def mobilenet_weights(path) -> list[np.ndarray]:
    """A mobilenet_v3_small weights file at 32 px, made here (tests cannot download ImageNet's); its
    weights in the model's order."""
    source = backbone("mobilenet_v3_small", 32)
    source.save_weights(path)
    return [w.numpy() for w in source.weights]


def test_weights_from_the_bucket_load_and_must_match(gcs, demo_data, tmp_path):
    local = tmp_path / "mobilenet_v3_small.weights.h5"
    mobilenet_weights(local)
    uri = f"gs://{BUCKET}/weights/{local.name}"
    storage.upload_file(local, uri)
    good = replace(MOBILENET, epochs=1, weights=uri)
    assert (
        train(demo_data, str(tmp_path / "m1"), str(tmp_path / "root"), "pretrained", config=good).epochs == 1
    )
    with pytest.raises(UsageError, match="does not match vgg16"):
        train(
            demo_data,
            str(tmp_path / "m2"),
            str(tmp_path / "root"),
            "mismatch",
            config=replace(good, model="vgg16"),
        )
    with pytest.raises(UsageError, match="does not exist"):
        train(
            demo_data,
            str(tmp_path / "m3"),
            str(tmp_path / "root"),
            "missing",
            config=replace(good, weights=uri.replace("mobilenet", "missing")),
        )


def test_freeze_then_fine_tune_is_one_series_with_the_boundary_marked(demo_data, tmp_path):
    start = mobilenet_weights(tmp_path / "w.weights.h5")
    config = replace(
        MOBILENET,
        epochs=3,
        weights=str(tmp_path / "w.weights.h5"),
        freeze_epochs=1,
        fine_tune_layers=2,
        fine_tune_learning_rate=1e-4,
    )
    root = str(tmp_path / "root")
    train(demo_data, str(tmp_path / "model"), root, "tuned", config=config)
    run_dir = f"{root}/tensorboard/tuned"
    assert epoch_steps(run_dir) == [0, 1, 2] and epoch_steps(run_dir, "validation") == [0, 1, 2]
    rates = [
        v
        for uri in event_files(run_dir, "train")
        for v in scalars(storage.read_bytes(uri), "epoch_learning_rate")
    ]
    assert sorted(rates) == [(0, pytest.approx(3e-3)), (1, pytest.approx(1e-4)), (2, pytest.approx(1e-4))]
    notes = texts(run_dir, "phase")
    assert [step for step, _ in notes] == [0, 1]
    assert (
        "frozen (head only" in notes[0][1]
        and "fine-tune (head and 2 mobilenet_v3_small layers)" in notes[1][1]
    )
    model, _ = load_trained(str(tmp_path / "model"))
    base = backbone_of(model)
    changed = {
        w.path.split("/")[0]
        for w, s in zip(base.weights, start, strict=True)
        if not np.array_equal(w.numpy(), s)
    }
    tuned = [
        layer.name
        for layer in base.layers
        if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)
    ][-2:]
    # Random weights here: a layer may get no gradient, so what moved is a subset of what trains.
    assert {w.path.split("/")[0] for w in base.trainable_weights} == set(tuned)
    assert changed and changed <= set(tuned), (
        "only the top 2 layers moved; BatchNorm and the rest are the file's"
    )


def seed_imagenet_cache(root: str, model: str, image_size: int, local) -> str:
    """What `trainboard weights fetch` leaves in the root, from a file made here."""
    uri = layout.imagenet_weights(root, model, image_size)
    storage.upload_file(local, uri)
    storage.write_bytes(uri + ".sha256", hashlib.sha256(local.read_bytes()).hexdigest().encode())
    return uri


def test_imagenet_comes_from_the_roots_cache_checked_and_refuses_offline(demo_data, tmp_path, monkeypatch):
    monkeypatch.setenv(OFFLINE_ENV, "1")
    root = str(tmp_path / "root")
    config = replace(MOBILENET, epochs=1, weights="imagenet", freeze_epochs=1)
    with pytest.raises(UsageError) as refused:
        train(demo_data, str(tmp_path / "m0"), root, "offline", config=config)
    assert refused.value.field == "weights"
    assert "mobilenet_v3_small-32-notop.weights.h5 has no cached copy" in refused.value.problem
    assert "trainboard weights fetch mobilenet_v3_small --image-size 32 --root " in refused.value.problem
    assert not (tmp_path / "root" / "tensorboard").exists(), "refused before anything was written"

    start = mobilenet_weights(tmp_path / "w.weights.h5")
    uri = seed_imagenet_cache(root, "mobilenet_v3_small", 32, tmp_path / "w.weights.h5")
    train(demo_data, str(tmp_path / "m1"), root, "cached", config=config)
    model, _ = load_trained(str(tmp_path / "m1"))
    for mine, cached in zip(backbone_of(model).weights, start, strict=True):  # frozen: still the cache's
        np.testing.assert_array_equal(mine.numpy(), cached)

    storage.write_bytes(uri + ".sha256", b"0" * 64)  # a damaged copy
    with pytest.raises(UsageError, match="does not match its checksum"):
        train(demo_data, str(tmp_path / "m2"), root, "damaged", config=config)


# The GPU code path (MirroredStrategy over several devices, mixed precision), on two logical CPU devices:
# train() itself only decides *which* strategy (GPUs visible or not); everything under it runs as here.
MULTI_REPLICA_SCRIPT = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from trainboard.components.train import core
from trainboard.config import TrainingConfig
core._strategy = lambda workers: tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert core._strategy(1).num_replicas_in_sync == 2
core.train(*sys.argv[1:5], config=TrainingConfig(**json.loads(sys.argv[5])))
"""


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_two_replicas_in_mixed_precision_train_checkpoint_and_resume(demo_data, tmp_path, precision):
    root = str(tmp_path / "root")
    config = {"model": "small_cnn", "epochs": 3, "batch_size": 32, "image_size": 16, "precision": precision}
    command = [sys.executable, "-c", MULTI_REPLICA_SCRIPT, demo_data, str(tmp_path / "model"), root, "mr"]
    command.append(json.dumps(config))
    # Killed before epoch 3's commit, then run again: it resumes from epoch 2's checkpoint, under the
    # strategy.
    first = subprocess.Popen(
        command, env={**os.environ, faults.FAULT_PAUSE_ENV: "checkpoint:3"}, stderr=subprocess.PIPE, text=True
    )
    try:
        for line in first.stderr:
            if "fault pause at checkpoint" in line:
                break
    finally:
        first.kill()
        first.wait()
    assert load_state(root, "mr").epoch == 2
    subprocess.run(command, check=True, capture_output=True)
    assert epoch_steps(f"{root}/tensorboard/mr") == [0, 1, 2]
    model, meta = load_trained(str(tmp_path / "model"))
    assert meta.epochs == 3 and 0 < meta.best_val_accuracy <= 1
    assert model.layers[1].dtype_policy.name == precision
    assert model.layers[-1].dtype_policy.name == "float32", "the softmax head stays in float32"
    x = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    assert model.predict(x, verbose=0).dtype == np.float32


def test_a_run_resumed_with_other_settings_or_data_is_refused_naming_the_difference(demo_data, tmp_path):
    root = str(tmp_path / "root")
    train(demo_data, str(tmp_path / "m1"), root, "nightly", config=FAST)
    before = {uri: storage.read_bytes(uri) for uri in storage.list_files(root)}
    with pytest.raises(UsageError) as refused:
        train(
            demo_data,
            str(tmp_path / "m2"),
            root,
            "nightly",
            config=replace(FAST, epochs=3, learning_rate=0.01),
        )
    assert refused.value.field == "run_name"
    assert "epochs 2 -> 3" in refused.value.problem and "learning_rate 0.003 -> 0.01" in refused.value.problem
    assert "--restart --run-name nightly" in refused.value.problem
    other = tmp_path / "other-data"  # the same source spec, other images: its fingerprint differs
    shutil.copytree(demo_data, other)
    info = json.loads((other / "dataset.json").read_text())
    (other / "dataset.json").write_text(json.dumps({**info, "fingerprint": "0" * 16}))
    with pytest.raises(UsageError, match="dataset_fingerprint"):
        train(str(other), str(tmp_path / "m3"), root, "nightly", config=FAST)
    assert {uri: storage.read_bytes(uri) for uri in storage.list_files(root)} == before, "nothing changed"
    # Logging settings may change between attempts: the same model is trained.
    train(demo_data, str(tmp_path / "m4"), root, "nightly", config=replace(FAST, sync_seconds=2.0))


def test_a_damaged_commit_or_checkpoint_is_named_with_the_way_out(demo_data, tmp_path):
    root = str(tmp_path / "root")
    config = replace(FAST, epochs=1)
    train(demo_data, str(tmp_path / "m1"), root, "r", config=config)
    # What `trainboard local` reads of a checkpoint without Keras, on what this Keras really saved.
    check_checkpoint(root, "r", load_state(root, "r"), "small_cnn", image_size=16, classes=4)
    with pytest.raises(UsageError, match=r"holds a head of 4 classes, not the 3 of this run's data"):
        check_checkpoint(root, "r", load_state(root, "r"), "small_cnn", image_size=16, classes=3)
    with pytest.raises(UsageError, match=r"holds a model of 16x16 images, not 24x24"):
        check_checkpoint(root, "r", load_state(root, "r"), "small_cnn", image_size=24, classes=4)
    with pytest.raises(
        UsageError, match=r"epoch-0001\.keras, which state\.json names, holds a small_cnn model"
    ):
        check_checkpoint(root, "r", load_state(root, "r"), "vgg16")
    state = f"{root}/checkpoints/r/state.json"
    good = storage.read_bytes(state)
    storage.write_bytes(state, good[: len(good) // 2])  # truncated
    with pytest.raises(UsageError, match=r"state\.json is damaged .*--restart --run-name r"):
        train(demo_data, str(tmp_path / "m2"), root, "r", config=config)
    storage.write_bytes(state, good)
    checkpoint = f"{root}/checkpoints/r/epoch-0001.keras"
    whole = storage.read_bytes(checkpoint)
    # The cluster's path (no CLI before it): a checkpoint that would load, of other classes or another
    # architecture, is refused by train before it loads, not by Keras in the middle of fit.
    others = [
        (build_model("small_cnn", 3, 16), "a head of 3 classes, not the 4"),
        (build_model("mobilenet_v3_small", 4, 32), "a mobilenet_v3_small model, not small_cnn"),
    ]
    for other, words in others:
        other.save(tmp_path / "other.keras")
        storage.write_bytes(checkpoint, (tmp_path / "other.keras").read_bytes())
        with pytest.raises(
            UsageError, match=words + r".*: it cannot resume this run; .*--restart --run-name r"
        ):
            train(demo_data, str(tmp_path / "m5"), root, "r", config=config)
    storage.write_bytes(checkpoint, whole)
    storage.write_bytes(checkpoint, storage.read_bytes(checkpoint)[:1000])  # torn
    with pytest.raises(
        UsageError, match=r"checkpoint .*epoch-0001\.keras, which state\.json names, is not a whole Keras"
    ):
        train(demo_data, str(tmp_path / "m3"), root, "r", config=config)
    storage.delete(checkpoint)
    with pytest.raises(UsageError, match=r"epoch-0001\.keras, which state\.json names, is missing"):
        train(demo_data, str(tmp_path / "m4"), root, "r", config=config)


@pytest.mark.slow
@pytest.mark.parametrize("augment", [False, True])
def test_a_run_killed_after_an_epoch_and_resumed_has_the_losses_of_the_run_never_killed(
    demo_data, tmp_path, augment
):
    """Exact resume on CPU: the same data order, augmentation, dropout masks and optimizer state in each
    epoch whether or not the run was stopped before it (docs/pipeline.md, "Exact resume")."""
    root = str(tmp_path / "root")
    config = {**asdict(FAST), "epochs": 3, "batch_size": 128, "augment": augment}
    subprocess.run(
        train_command(demo_data, tmp_path / "m1", root, "whole", config), check=True, capture_output=True
    )
    killed = subprocess.Popen(
        train_command(demo_data, tmp_path / "m2", root, "killed", config),
        env={**os.environ, faults.FAULT_PAUSE_ENV: "checkpoint:2"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert killed.stderr is not None
        for line in killed.stderr:
            if "fault pause at checkpoint" in line:
                break
    finally:
        killed.kill()
        killed.wait()
    assert load_state(root, "killed").epoch == 1
    subprocess.run(
        train_command(demo_data, tmp_path / "m3", root, "killed", config), check=True, capture_output=True
    )
    whole, resumed = load_state(root, "whole").history, load_state(root, "killed").history
    for metric in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert resumed[metric] == whole[metric], metric  # exactly: the same floats
