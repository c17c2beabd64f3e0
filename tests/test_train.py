"""The train component's core: models, TensorBoard content, streaming cost, resume after a kill, bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace

import keras
import numpy as np
import pytest
from tensorboard.compat.proto import event_pb2

from components.train.core import train
from components.train.input_pipeline import load_split
from components.train.models import build_model
from tests.support.events import epoch_steps, event_files, records
from tests.support.gcs import BUCKET
from tests.support.training import FAST
from trainboard import storage
from trainboard.artifacts.model import load_trained
from trainboard.config import MODELS
from trainboard.errors import UsageError


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
    info = train(demo_data, str(tmp_path / "model"), root, "r1", FAST)
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


def test_streaming_to_gcs_uploads_each_byte_about_once(gcs, demo_data, tmp_path):
    config = replace(FAST, epochs=3, sync_seconds=0.05, batch_scalars_every=1)  # many syncs
    info = train(demo_data, str(tmp_path / "model"), f"gs://{BUCKET}/r", "often", config)
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
        ({"model": "vgg16", "image_size": 32, "weights_uri": "s3://x/w.h5"}, "weights_uri", ["s3://"]),
        ({"weights_uri": "gs://bucket/w.h5"}, "weights_uri", ["small_cnn has no pretrained weights"]),
    ],
)
def test_bad_training_input_is_refused_before_training(demo_data, tmp_path, change, field, words):
    with pytest.raises(UsageError) as error:
        train(demo_data, str(tmp_path / "model"), str(tmp_path / "root"), "bad", replace(FAST, **change))
    assert error.value.field == field
    for word in words:
        assert word in str(error.value)
    assert not (tmp_path / "root").exists() and not (tmp_path / "model").exists()


def test_weights_from_the_bucket_load_and_must_match(gcs, demo_data, tmp_path):
    backbone = keras.applications.MobileNetV3Small(
        include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg"
    )
    local = tmp_path / "mobilenet_v3_small.weights.h5"
    backbone.save_weights(local)
    uri = f"gs://{BUCKET}/weights/{local.name}"
    storage.upload_file(local, uri)
    good = replace(FAST, model="mobilenet_v3_small", image_size=32, epochs=1, weights_uri=uri)
    assert train(demo_data, str(tmp_path / "m1"), str(tmp_path / "root"), "pretrained", good).epochs == 1
    with pytest.raises(UsageError, match="does not match vgg16"):
        train(
            demo_data, str(tmp_path / "m2"), str(tmp_path / "root"), "mismatch", replace(good, model="vgg16")
        )
    with pytest.raises(UsageError, match="does not exist"):
        train(
            demo_data,
            str(tmp_path / "m3"),
            str(tmp_path / "root"),
            "missing",
            replace(good, weights_uri=uri + ".x"),
        )


# The GPU code path (MirroredStrategy over several devices, mixed precision), on two logical CPU devices:
# train() itself only decides *which* strategy (GPUs visible or not); everything under it runs as here.
MULTI_REPLICA_SCRIPT = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from components.train import core
from trainboard.config import TrainingConfig
core._strategy = lambda: tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert core._strategy().num_replicas_in_sync == 2
core.train(*sys.argv[1:5], TrainingConfig(**json.loads(sys.argv[5])))
"""


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_two_replicas_in_mixed_precision_train_checkpoint_and_resume(demo_data, tmp_path, precision):
    root = str(tmp_path / "root")
    config = {"model": "small_cnn", "epochs": 2, "batch_size": 32, "image_size": 16, "precision": precision}
    for epochs in (2, 3):  # the second call resumes from the checkpoint of epoch 2, under the strategy
        command = [sys.executable, "-c", MULTI_REPLICA_SCRIPT, demo_data, str(tmp_path / "model"), root, "mr"]
        subprocess.run([*command, json.dumps({**config, "epochs": epochs})], check=True, capture_output=True)
    assert epoch_steps(f"{root}/tensorboard/mr") == [0, 1, 2]
    model, meta = load_trained(str(tmp_path / "model"))
    assert meta.epochs == 3 and 0 < meta.best_val_accuracy <= 1
    assert model.layers[1].dtype_policy.name == precision
    assert model.layers[-1].dtype_policy.name == "float32", "the softmax head stays in float32"
    x = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    assert model.predict(x, verbose=0).dtype == np.float32
