"""Bad input across every way in: `trainboard local`, `submit` / `schedule` (pipeline parameters, cron, the
config file), `manifests`, `champion`, `gc`, data sources and the training config. Each case exits 2 (a core
raises UsageError) with a message naming the field and what is allowed, and nothing reaches the root or the
Kubeflow Pipelines endpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.support.gcs import BUCKET
from tests.support.images import encode, make_image_folder
from tests.support.kfp_server import KFPServer
from trainboard import storage
from trainboard.app.cli import main
from trainboard.components.prepare_data.core import prepare_data
from trainboard.config import DataConfig
from trainboard.errors import UsageError

CLUSTER_ROOT = "gs://team-bucket/trainboard"
CRON = ["--name", "nightly", "--cron", "0 0 3 * * *"]
WITH_ACTIONS = ("champion", "weights", "schedule")  # `trainboard champion show: error: ...`


def non_utf8_class(tmp: Path) -> str:
    """An image folder whose second class folder is named with Latin-1 bytes (b'caf\\xe9')."""
    make_image_folder(tmp / "images", {"": 2}, classes=["tea", "coffee"])
    os.rename(tmp / "images" / "coffee", os.fsencode(tmp / "images") + b"/caf\xe9")
    return f"folder:{tmp / 'images'}"


def symlink_loop(tmp: Path) -> str:
    """A link inside a class folder back to the folder above it."""
    make_image_folder(tmp / "images", {"": 2}, classes=["tea", "coffee"])
    (tmp / "images" / "tea" / "everything").symlink_to("..")
    return f"folder:{tmp / 'images'}"


def misspelled_train_split(tmp: Path) -> str:
    """Split folders, the training one misspelled: no train split, and folders where classes should be."""
    make_image_folder(tmp / "images", {"trian": 2, "test": 1}, classes=["tea", "coffee"])
    return f"folder:{tmp / 'images'}"


def two_validation_folders(tmp: Path) -> str:
    make_image_folder(tmp / "images", {"train": 2, "val": 1, "Validation": 1}, classes=["tea", "coffee"])
    return f"folder:{tmp / 'images'}"


def class_with_only(tmp: Path, image: bytes) -> str:
    """Two good classes and a third whose every image is ``image``."""
    make_image_folder(tmp / "images", {"": 4}, classes=["circle", "square"])
    (tmp / "images" / "dot").mkdir()
    for i in range(4):
        (tmp / "images" / "dot" / f"{i}.jpg").write_bytes(image)
    return f"folder:{tmp / 'images'}"


def class_of_two(tmp: Path) -> str:
    """Two classes of 4 images and one of 2: too few for validation and test carved out of each class."""
    make_image_folder(tmp / "images", {"": 4}, classes=["circle", "square"])
    make_image_folder(tmp / "images", {"": 2}, classes=["dot"], seed=1)
    return f"folder:{tmp / 'images'}"


def renamed_class(tmp: Path, name: str) -> str:
    """Two classes of 4 images, the second renamed ``name``."""
    make_image_folder(tmp / "images", {"": 4}, classes=["tea", "coffee"])
    os.rename(tmp / "images" / "coffee", tmp / "images" / name)
    return f"folder:{tmp / 'images'}"


def cafe_twice(tmp: Path) -> str:
    """Class folders "café" composed (U+00E9) and decomposed (e + U+0301, as macOS writes it)."""
    make_image_folder(tmp / "images", {"": 4}, classes=["caf\u00e9", "cafe\u0301"])
    return f"folder:{tmp / 'images'}"


def cafe_across_splits(tmp: Path, split: str, train_form: str, other_form: str) -> str:
    """A class "café" in train in one Unicode form and in ``split`` in the other (copied from two
    machines)."""
    make_image_folder(tmp / "images", {"train": 4, split: 2}, classes=["tea", train_form])
    os.rename(tmp / "images" / split / train_form, tmp / "images" / split / other_form)
    return f"folder:{tmp / 'images'}"


def webp_class(tmp: Path) -> str:
    make_image_folder(tmp / "images", {"train": 4}, classes=["circle", "square"])
    (tmp / "images" / "train" / "dot").mkdir()
    for i in range(4):
        Image.new("RGB", (32, 32)).save(tmp / "images" / "train" / "dot" / f"{i}.webp", "WEBP")
    return f"folder:{tmp / 'images'}"


RECORD = {
    "run": "k1",
    "model_uri": "models/k1",
    "metrics": {"test_accuracy": 0.9},
    "promoted_at": "2026-11-01T02:00:00+00:00",
    "reason": "first",
}


def root_with(tmp: Path, name: str, fields: dict, raw: str = "") -> str:
    """A root holding only ``name`` (champion.json, a history entry or a run's state.json): ``fields`` as
    JSON, with ``raw`` replacing the text "RAW" (a JSON token json.dumps never writes: Infinity, NaN)."""
    path = tmp / "root" / name
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(fields).replace('"RAW"', raw))
    return str(tmp / "root")


def damaged_record(**fields) -> Callable[[Path], str]:
    return lambda tmp: root_with(tmp, "champion.json", {**RECORD, **fields}, raw="Infinity")


def damaged_state(**fields) -> Callable[[Path], str]:
    state = {"epoch": 1, "checkpoint": "epoch-0001.keras", **fields}
    return lambda tmp: root_with(tmp, "checkpoints/k1/state.json", state, raw="NaN")


def config_file(tmp: Path, text: str) -> str:
    (tmp / "config.toml").write_text(text)
    return str(tmp / "config.toml")


def not_utf8_config(tmp: Path) -> str:
    (tmp / "config.toml").write_bytes(b'endpoint = "https://caf\xe9.example.com"\n')  # Latin-1, not UTF-8
    return str(tmp / "config.toml")


def a_file(tmp: Path) -> str:
    (tmp / "notes.txt").write_text("not a folder\n")
    return str(tmp / "notes.txt")


def unwritable_folder(tmp: Path, record: bool = False) -> str:
    """A folder this user cannot write in: mode 0555, and immutable where the user is root (root writes
    through modes); with ``record``, a root holding a champion record."""
    folder = tmp / "read-only"
    folder.mkdir()
    if record:
        (folder / "champion.json").write_text(json.dumps(RECORD))
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
    if os.access(folder, os.W_OK):
        pytest.skip("no way to make a folder unwritable for this user here (root without chattr)")
    return str(folder)


def make_writable(tmp: Path) -> None:
    folder = tmp / "read-only"
    if folder.exists():
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
        folder.chmod(0o755)


def mobilenet_weights_file(tmp: Path) -> str:
    """A weights file of another architecture than the case asks for (mobilenet_v3_small, made here)."""
    from trainboard.backbones import backbone

    backbone("mobilenet_v3_small", 32).save_weights(tmp / "mobilenet.weights.h5")
    return str(tmp / "mobilenet.weights.h5")


def one_pixel_png() -> bytes:
    return encode(np.zeros((1, 1, 3), np.uint8), "png")


def truncated_jpeg() -> bytes:
    data = tf.io.encode_jpeg(np.full((64, 64, 3), 200, np.uint8)).numpy()
    return data[: len(data) // 2]


@dataclass
class Case:
    """``command``: the CLI's arguments, or ["prepare_data", DATASET] for the core; "{data}" is replaced
    by what ``data`` prepares in the test's folder. ``gcs``: the root's bucket server is needed."""

    id: str
    command: list[str]
    field: str
    words: list[str]
    data: Callable[[Path], str] | None = None
    gcs: bool = False
    extra: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)
    undo: Callable[[Path], None] | None = None  # what ``data`` did that pytest cannot clean up


CASES = [
    # trainboard local: training config, root, run name, data source
    Case("local-empty-model", ["local", "--model", ""], "model", ["invalid choice: ''", "'small_cnn'"]),
    Case("local-huge-epochs", ["local", "--epochs", "1000000"], "epochs", ["at most 10000"]),
    Case("local-huge-batch", ["local", "--batch-size", "99999999"], "batch_size", ["at most 65536"]),
    Case("local-negative-lr", ["local", "--learning-rate", "-0.1"], "learning_rate", ["greater than 0"]),
    Case("local-huge-lr", ["local", "--learning-rate", "1e9"], "learning_rate", ["at most 10.0"]),
    Case("local-negative-size", ["local", "--image-size", "-32"], "image_size", ["16 to 512"]),
    Case("local-negative-smoothing", ["local", "--label-smoothing", "-0.5"], "label_smoothing", ["[0, 1)"]),
    Case(
        "local-negative-patience",
        ["local", "--early-stopping-patience", "-2"],
        "early_stopping_patience",
        ["0 or more"],
    ),
    Case("local-zero-sync", ["local", "--sync-seconds", "0"], "sync_seconds", ["greater than 0"]),
    Case("local-profile-words", ["local", "--profile-batches", "ten"], "profile_batches", ["START[,STOP]"]),
    Case("local-unknown-precision", ["local", "--precision", "float64"], "precision", ["mixed_bfloat16"]),
    Case("local-blank-root", ["local", "--root", "   "], "root", ["empty", "gs://BUCKET"]),
    Case("local-file-scheme", ["local", "--root", "file:///tmp/x"], "root", ["file:// is not supported"]),
    Case("local-dotdot-root", ["local", "--root", f"gs://{BUCKET}/a/../../b"], "root", ["'..'"]),
    Case(
        "local-missing-bucket",
        ["local", "--root", "gs://missing-bucket/x"],
        "root",
        ["bucket missing-bucket does not exist", "existing bucket"],
        gcs=True,
    ),
    Case("local-run-newline", ["local", "--run-name", "nightly\n"], "run_name", ["not a valid run name"]),
    Case("local-run-name-empty", ["local", "--run-name", ""], "run_name", ["'' is not a valid run name"]),
    Case(
        "local-restart-run-name-empty",
        ["local", "--restart", "--run-name", ""],
        "run_name",
        ["'' is not a valid run name"],
    ),
    Case("submit-run-name-empty", ["submit", "--run-name", ""], "run_name", ["'' is not a valid run name"]),
    *(
        Case(
            f"local-webhook-{kind}",
            ["local"],
            "TRAINBOARD_WEBHOOK_URL",
            [problem, "the value is not shown"],
            env={"TRAINBOARD_WEBHOOK_URL": url},
        )
        for kind, url, problem in (
            ("file", "file:///tmp/T000/secret", "is not an http:// or https:// URL"),
            ("no-scheme", "hooks.slack.com/services/T000/secret", "is not an http:// or https:// URL"),
            ("no-host", "https:///services/T000/secret", "has no host"),
        )
    ),
    Case("local-huge-seed", ["local", "--seed", "4294967296"], "seed", ["[0, 4294967295]"]),
    Case(
        "local-profile-backwards",
        ["local", "--profile-batches", "20,10"],
        "profile_batches",
        ["START must not"],
    ),
    Case(
        "submit-tensorboard-url-no-scheme",
        ["submit", "--param", "tensorboard_url=tensorboard.example.com"],
        "param",
        ["tensorboard_url='tensorboard.example.com': 'tensorboard.example.com' is not an http://"],
    ),
    Case("submit-run-newline", ["submit", "--run-name", "nightly\n"], "run_name", ["not a valid run name"]),
    Case(
        "local-root-leading-space",
        ["local", "--root", " runs"],
        "root",
        ["' runs' starts or ends with a space"],
    ),
    Case("local-root-trailing-space", ["local", "--root", "runs "], "root", ["starts or ends with a space"]),
    Case("local-root-bidi", ["local", "--root", "runs\u202eevil"], "root", ["U+202E", "not allowed"]),
    Case("local-root-newline", ["local", "--root", "runs\nx"], "root", ["U+000A", "not allowed"]),
    Case("local-root-under-proc", ["local", "--root", "/proc/trainboard"], "root", ["cannot hold files"]),
    Case(
        "local-root-under-sys", ["local", "--root", "/sys/kernel/trainboard"], "root", ["cannot hold files"]
    ),
    Case(
        "local-root-is-file", ["local", "--root", "{data}/runs"], "root", ["notes.txt is a file"], data=a_file
    ),
    Case(
        "local-root-unwritable",
        ["local", "--root", "{data}"],
        "root",
        ["read-only is not writable by this user"],
        data=unwritable_folder,
        undo=make_writable,
    ),
    Case(
        "local-gcs-no-credentials",
        ["local", "--root", f"gs://{BUCKET}/x"],
        "root",
        [
            "no Google Cloud credentials",
            "gcloud auth application-default login",
            "GOOGLE_APPLICATION_CREDENTIALS",
        ],
        env={"NO_GCE_CHECK": "True"},  # no metadata server here: google-auth would try one for a while
    ),
    Case(
        "gc-gcs-no-credentials",
        ["gc", "--root", f"gs://{BUCKET}/x"],
        "root",
        ["no Google Cloud credentials", "gcloud auth application-default login"],
        env={"NO_GCE_CHECK": "True"},
    ),
    Case("local-port-zero", ["local", "--port", "0"], "port", ["must be in 1-65535, got 0"]),
    Case("local-port-huge", ["local", "--port", "70000"], "port", ["must be in 1-65535, got 70000"]),
    Case("local-run-slashes", ["local", "--run-name", "nightly/2026-01-01"], "run_name", ["no slashes"]),
    Case("local-run-dotdot", ["local", "--run-name", ".."], "run_name", ["starting with a letter or digit"]),
    Case(
        "local-empty-dataset", ["local", "--dataset", ""], "dataset", ["unsupported source ''", "folder:URI"]
    ),
    Case("local-empty-folder", ["local", "--dataset", "folder:"], "dataset", ["empty", "gs://BUCKET"]),
    Case(
        "local-folder-scheme",
        ["local", "--dataset", "folder:http://example.com/images"],
        "dataset",
        ["http:// is not supported"],
    ),
    Case(
        "local-negative-fraction",
        ["local", "--validation-fraction", "-0.2"],
        "validation_fraction",
        ["between 0 and 1"],
    ),
    Case(
        "local-non-utf8-class",
        ["local", "--dataset", "{data}"],
        "dataset",
        ["b'caf\\xe9' is not UTF-8", "rename it"],
        data=non_utf8_class,
    ),
    Case(
        "local-control-character-class",
        ["local", "--dataset", "{data}"],
        "dataset",
        ["'cof\\x1b[31mfee' holds a control character", "rename it"],
        data=lambda tmp: renamed_class(tmp, "cof\x1b[31mfee"),  # an escape sequence: recolours, forges lines
    ),
    Case(
        "local-symlink-loop",
        ["local", "--dataset", "{data}"],
        "dataset",
        ["tea/everything is a symbolic link that leads back", "(a loop)"],
        data=symlink_loop,
    ),
    Case(
        "local-misspelled-train-split",
        ["local", "--dataset", "{data}"],
        "dataset",
        ["trian/ holds folders, not images: it looks like the train split", "train (train/training)"],
        data=misspelled_train_split,
    ),
    Case(
        "local-two-validation-folders",
        ["local", "--dataset", "{data}"],
        "dataset",
        ["folders Validation and val are both the validation split; keep one"],
        data=two_validation_folders,
    ),
    Case(
        "local-class-all-corrupt",
        ["local", "--dataset", "{data}"],
        "dataset",
        ["class 'dot' has no usable training images: none of its 4 files has the header of a .jpg"],
        data=lambda tmp: class_with_only(tmp, b"\xff\xd8\xff not a JPEG"),
    ),
    Case(
        "local-class-of-two",
        ["local", "--dataset", "{data}"],
        "dataset",
        ["class 'dot' has 2 images", "test (0.1) and validation (0.1)", "needs at least 3 images"],
        data=class_of_two,
    ),
    Case(
        "local-class-too-small-for-fractions",
        ["local", "--dataset", "{data}", "--validation-fraction", "0.5", "--test-fraction", "0.4"],
        "dataset",
        ["class 'circle' has 4 images", "needs at least 5 images"],
        data=class_of_two,
    ),
    Case(
        "local-tfds-data-dir-file",
        ["local", "--dataset", "tfds:mnist", "--tfds-data-dir", "{data}"],
        "tfds_data_dir",
        ["notes.txt is a file, not a folder"],
        data=a_file,
    ),
    Case(
        "local-tfds-data-dir-s3",
        ["local", "--dataset", "tfds:mnist", "--tfds-data-dir", "s3://bucket/tfds"],
        "tfds_data_dir",
        ["s3:// is not supported; expected a local folder or gs://BUCKET[/PREFIX]"],
    ),
    Case(
        "local-folder-missing-bucket",
        ["local", "--dataset", "folder:gs://missing-bucket/images"],
        "dataset",
        ["folder:gs://missing-bucket/images: nothing there: bucket missing-bucket does not exist"],
        gcs=True,
    ),
    Case(
        "local-tfds-offline-not-prepared",
        ["local", "--dataset", "tfds:mnist", "--tfds-data-dir", "{data}/tfds"],
        "dataset",
        ["tfds:mnist is not prepared in", "TRAINBOARD_OFFLINE is set (no network)", "--tfds-data-dir"],
        data=str,
        env={"TRAINBOARD_OFFLINE": "1"},
    ),
    Case(
        "local-bidi-class",
        ["local", "--dataset", "{data}"],
        "dataset",
        [
            "'dot\\u202egnp.exe' holds U+202E, invisible formatting (such as a right-to-left mark)",
            "rename it",
        ],
        data=lambda tmp: renamed_class(tmp, "dot\u202egnp.exe"),
    ),
    Case(
        "local-class-in-two-unicode-forms",
        ["local", "--dataset", "{data}"],
        "dataset",
        ["folders 'cafe\\u0301' and 'caf\\xe9' are the same name in two Unicode forms"],
        data=cafe_twice,
    ),
    Case(
        "local-class-in-two-unicode-forms-across-splits",
        ["local", "--dataset", "{data}"],
        "dataset",
        ["class folders train/'caf\\xe9' and test/'cafe\\u0301' are the same name in two Unicode forms"],
        data=lambda tmp: cafe_across_splits(tmp, "test", "caf\u00e9", "cafe\u0301"),
    ),
    Case(
        "local-class-in-two-unicode-forms-train-decomposed",
        ["local", "--dataset", "{data}"],
        "dataset",
        [
            "train/'cafe\\u0301' and validation/'caf\\xe9' are the same name in two Unicode forms",
            "rename one",
        ],
        data=lambda tmp: cafe_across_splits(tmp, "validation", "cafe\u0301", "caf\u00e9"),
    ),
    Case(
        "local-webp-class",
        ["local", "--dataset", "{data}"],
        "dataset",
        ["class folder train/dot holds 4 files", "not a supported image type (webp)"],
        data=webp_class,
    ),
    Case(
        "local-zero-pixel-limit",
        ["local", "--max-image-pixels", "0"],
        "max_image_pixels",
        ["greater than 0"],
    ),
    # the backbone's weights
    Case(
        "local-weights-unknown-name",
        ["local", "--model", "vgg16", "--image-size", "32", "--weights", "imagenet21k"],
        "weights",
        ["'imagenet21k' is not none, imagenet, or a weights file"],
    ),
    Case(
        "local-weights-missing-file",
        ["local", "--model", "vgg16", "--image-size", "32", "--weights", "/nowhere/vgg16.weights.h5"],
        "weights",
        ["/nowhere/vgg16.weights.h5 does not exist"],
    ),
    Case(
        "local-weights-other-architecture",
        ["local", "--model", "vgg16", "--image-size", "32", "--weights", "{data}"],
        "weights",
        ["does not match vgg16 at 32 px"],
        data=mobilenet_weights_file,
    ),
    Case(
        "local-imagenet-offline-no-cache",
        ["local", "--model", "vgg16", "--image-size", "32", "--weights", "imagenet"],
        "weights",
        ["vgg16-32-notop.weights.h5 has no cached copy", "trainboard weights fetch vgg16 --image-size 32"],
        env={"TRAINBOARD_OFFLINE": "1"},
    ),
    Case(
        "local-small-cnn-imagenet",
        ["local", "--weights", "imagenet"],
        "weights",
        ["small_cnn has no pretrained weights"],
    ),
    Case(
        "local-freeze-untrained",
        ["local", "--model", "vgg16", "--freeze-epochs", "2"],
        "freeze_epochs",
        ["untrained backbone"],
    ),
    # trainboard champion
    Case(
        "champion-rollback-never-champion",
        ["champion", "rollback", "--root", "{data}", "--to", "nobody"],
        "to",
        ["run 'nobody' was never champion", "trainboard champion history"],
        data=lambda tmp: (tmp / "root").mkdir() or str(tmp / "root"),
    ),
    Case(
        "champion-rollback-bad-to",
        ["champion", "rollback", "--root", "{data}", "--to", "../x"],
        "to",
        ["not a valid run name"],
        data=lambda tmp: (tmp / "root").mkdir() or str(tmp / "root"),
    ),
    Case(
        "champion-rollback-reason-bidi",
        ["champion", "rollback", "--root", "{data}", "--to", "r1", "--reason", "ok\u202eevil"],
        "reason",
        ["U+202E", "not allowed"],
        data=lambda tmp: (tmp / "root").mkdir() or str(tmp / "root"),
    ),
    Case(
        "champion-show-root-missing",
        ["champion", "show", "--root", "{data}"],
        "root",
        ["does not exist", "no champion to show"],
        data=lambda tmp: str(tmp / "no-such-root"),
    ),
    Case(
        "champion-history-default-root-missing",
        ["champion", "history"],
        "root",
        ["trainboard-runs does not exist", "no champion history", "run `trainboard local` first"],
    ),
    Case(
        "champion-show-json-with-a-value",
        ["champion", "show", "--json=yes"],
        "json",
        ["ignored explicit argument 'yes'"],
    ),
    # files a person or a crash damaged: refused naming the file and the way out, never trusted
    Case(
        "champion-record-accuracy-text",
        ["champion", "show", "--root", "{data}"],
        "champion.json",
        ["champion.json is not a valid champion record", "metrics", "not an object of numbers", "repair"],
        data=damaged_record(metrics={"test_accuracy": "0.9"}),
    ),
    Case(
        "champion-record-accuracy-infinity",
        ["champion", "history", "--root", "{data}"],
        "champion.json",
        ["has no test_accuracy in [0, 1]", "trainboard champion repair --root"],
        data=damaged_record(metrics={"test_accuracy": "RAW"}),
    ),
    Case(
        "champion-record-promoted-tomorrow",
        ["champion", "show", "--root", "{data}"],
        "champion.json",
        ["promoted_at 'tomorrow' is not an ISO 8601 time"],
        data=damaged_record(promoted_at="tomorrow"),
    ),
    Case(
        "champion-record-run-a-number",
        ["gc", "--root", "{data}"],
        "champion.json",
        ["run 7 is not text without control characters"],
        data=damaged_record(run=7),
    ),
    Case(
        "champion-record-escape-sequence",
        ["champion", "rollback", "--root", "{data}", "--to", "k1"],
        "champion.json",
        ["reason 'ok\\x1b[2J\\nforged' is not text without control characters"],
        data=damaged_record(reason="ok\x1b[2J\nforged"),  # clears the screen, forges a line
    ),
    Case(
        "champion-history-p-value-seven",
        ["champion", "show", "--root", "{data}"],
        "champion-history/20261101T020000-k1.json",
        ["is not a valid champion record", "p_value 7 is not a p-value in [0, 1]"],
        data=lambda tmp: root_with(tmp, "champion-history/20261101T020000-k1.json", {**RECORD, "p_value": 7}),
    ),
    Case(
        "champion-history-unknown-action",
        ["gc", "--root", "{data}"],
        "champion-history/20261101T020000-k1.json",
        ["action 'demote' is not one of promote, force, rollback"],
        data=lambda tmp: root_with(
            tmp, "champion-history/20261101T020000-k1.json", {**RECORD, "action": "demote"}
        ),
    ),
    Case(
        "local-state-epoch-text",
        ["local", "--dataset", "demo", "--root", "{data}", "--run-name", "k1"],
        "run_name",
        [
            "k1/state.json is damaged (epoch 'three' is not a whole number 0 or more)",
            "--restart --run-name k1",
        ],
        data=damaged_state(epoch="three"),
    ),
    Case(
        "local-state-checkpoint-outside",
        ["local", "--dataset", "demo", "--root", "{data}", "--run-name", "k1"],
        "run_name",
        ["checkpoint '../../champion.json' is not a file name", "--restart --run-name k1"],
        data=damaged_state(checkpoint="../../champion.json"),
    ),
    Case(
        "local-state-history-nan-epoch",
        ["local", "--dataset", "demo", "--root", "{data}", "--run-name", "k1"],
        "run_name",
        ["epoch nan is not a whole number 0 or more"],
        data=damaged_state(epoch="RAW"),
    ),
    Case(
        "local-state-unknown-field-newline",
        ["local", "--dataset", "demo", "--root", "{data}", "--run-name", "k1"],
        "run_name",
        ["not a state's fields ['ep\\noch']"],
        data=damaged_state(**{"ep\noch": 2}),
    ),
    # admin commands that write: a read-only root, a root too long for the file system
    Case(
        "champion-rollback-read-only-root",
        ["champion", "rollback", "--root", "{data}", "--to", "k1"],
        "root",
        ["read-only is not writable by this user"],
        data=lambda tmp: unwritable_folder(tmp, record=True),
        undo=make_writable,
    ),
    Case(
        "champion-repair-read-only-root",
        ["champion", "repair", "--root", "{data}"],
        "root",
        ["read-only is not writable by this user"],
        data=lambda tmp: unwritable_folder(tmp, record=True),
        undo=make_writable,
    ),
    *[
        Case(
            f"{command[0]}-{'-'.join(command[1:2])}-root-{kind}".replace("--", "-"),
            [*command, "--root", root],
            "root",
            words,
        )
        for command in (
            ["local"],
            ["gc"],
            ["champion", "show"],
            ["champion", "repair"],
            ["champion", "rollback", "--to", "k1"],
            ["weights", "fetch", "vgg16"],
        )
        for kind, root, words in (
            ("name-too-long", f"/tmp/{'a' * 300}/runs", ["is 300 bytes long", "names of at most 255"]),
            ("path-too-long", "/tmp/" + "/".join(["b" * 200] * 20), ["use a root of at most"]),
            ("object-name-too-long", f"gs://{BUCKET}/{'c' * 900}", ["longer than gs:// object names"]),
        )
    ],
    # trainboard gc
    Case(
        "gc-default-root-missing",
        ["gc"],
        "root",
        ["trainboard-runs does not exist", "no checkpoints to clean up", "give --root"],
    ),
    Case("gc-keep-not-a-number", ["gc", "--keep", "all"], "keep", ["invalid int value: 'all'"]),
    Case(
        "gc-keep-zero",
        ["gc", "--root", "{data}", "--keep", "0"],
        "keep",
        ["must be 1 or more", "got 0"],
        data=lambda tmp: str(tmp),
    ),
    Case(
        "gc-missing-root",
        ["gc", "--root", "{data}"],
        "root",
        ["does not exist", "no checkpoints to clean up"],
        data=lambda tmp: str(tmp / "nowhere"),
    ),
    Case(
        "gc-missing-bucket",
        ["gc", "--root", "gs://no-such-bucket/team"],
        "root",
        ["gs://no-such-bucket/team does not exist"],
        gcs=True,
    ),
    Case(
        "local-significance-above-1",
        ["local", "--min-significance", "1.5"],
        "min_significance",
        ["must be in [0, 1] (a p-value", "got 1.5"],
    ),
    Case(
        "weights-fetch-image-size-words",
        ["weights", "fetch", "vgg16", "--image-size", "big"],
        "image_size",
        ["invalid int value: 'big'"],
    ),
    Case(
        "weights-fetch-no-imagenet",
        ["weights", "fetch", "small_cnn", "--root", "."],
        "MODEL",
        ["'small_cnn' has no ImageNet weights", "vgg16"],
    ),
    # submit / schedule: pipeline parameters, cron, settings
    Case(
        "submit-weights-local-path",
        ["submit", "--param", "weights=/home/me/vgg16.weights.h5"],
        "param",
        ["weights='/home/me/vgg16.weights.h5' is a local path", "gs://"],
    ),
    Case(
        "schedule-freeze-past-epochs",
        ["schedule", "create", *CRON, "--param", "freeze_epochs=12"],
        "param",
        ["freeze_epochs=12: must be in [0, epochs=10]"],
    ),
    Case(
        "submit-negative-epochs",
        ["submit", "--param", "epochs=-5"],
        "param",
        ["epochs=-5: must be greater than 0"],
    ),
    Case(
        "submit-negative-gpus",
        ["submit", "--param", "accelerator_count=-1"],
        "param",
        ["accelerator_count='-1': must be a whole number 0 or more"],
    ),
    Case(
        "submit-fractional-gpus",
        ["submit", "--param", "accelerator_count=0.5"],
        "param",
        ["accelerator_count='0.5': must be a whole number 0 or more"],
    ),
    *(
        Case(
            f"{command}-accelerator-type-{kind}",
            [
                command,
                *(["create", *CRON] if command == "schedule" else []),
                "--param",
                f"accelerator_type={value}",
            ],
            "param",
            [f"accelerator_type={value!r}: {value!r} is {problem}", "accelerator_count=0 for no accelerator"],
        )
        for command, kind, value, problem in (
            ("submit", "empty", "", "empty"),
            ("submit", "blank", "  ", "empty"),
            ("schedule", "empty", "", "empty"),
            ("submit", "spaced", "nvidia.com/ gpu", "not a resource name"),
            ("submit", "two-slashes", "nvidia.com/gpu/a100", "not a resource name"),
        )
    ),
    *(
        Case(
            f"{command}-tfds-data-dir-{kind}",
            [
                command,
                *(["create", *CRON] if command == "schedule" else []),
                "--param",
                f"tfds_data_dir={value}",
            ],
            "param",
            [f"tfds_data_dir={value!r}", *words],
        )
        for command, kind, value, words in (
            ("submit", "local", "/data/tfds", ["is a local path", "gs://BUCKET[/PREFIX]"]),
            ("submit", "relative", "tfds-cache", ["is a local path"]),
            ("schedule", "local", "~/tensorflow_datasets", ["is a local path"]),
            ("submit", "s3", "s3://bucket/tfds", ["s3:// is not supported", "gs://BUCKET[/PREFIX]"]),
            ("submit", "file", "file:///data/tfds", ["file:// is not supported"]),
            ("schedule", "https", "https://example.com/tfds", ["https:// is not supported"]),
        )
    ),
    Case(
        "submit-unknown-model",
        ["submit", "--param", "model=alexnet"],
        "param",
        ["model='alexnet': unknown model", "efficientnet_b0"],
    ),
    Case(
        "submit-empty-root",
        ["submit", "--param", "root="],
        "param",
        ["root='': empty"],
        extra={"root": False},
    ),
    Case(
        "submit-bad-dataset",
        ["submit", "--param", "dataset=ftp://x"],
        "param",
        ["dataset='ftp://x': unsupported source", "tfds:NAME"],
    ),
    Case(
        "submit-tfds-typo",
        ["submit", "--param", "dataset=tfds:caltech10"],
        "param",
        ["dataset='tfds:caltech10'", "did you mean tfds:caltech101"],
    ),
    Case(
        "submit-local-folder",
        ["submit", "--param", "dataset=folder:/local/path"],
        "param",
        ["dataset='folder:/local/path'", "folder:gs://BUCKET/PREFIX"],
    ),
    Case(
        "submit-huge-fraction",
        ["submit", "--param", "test_fraction=1e300"],
        "param",
        ["test_fraction=1e+300: must be between 0 and 1"],
    ),
    Case("submit-run-dot", ["submit", "--run-name=.hidden"], "run_name", ["starting with a letter or digit"]),
    Case(
        "submit-endpoint-scheme",
        ["submit", "--endpoint", "ftp://kfp.example.com"],
        "endpoint",
        ["not an http:// or https:// URL"],
        extra={"endpoint": False},
    ),
    Case(
        "submit-config-unknown",
        ["submit", "--config", "{data}"],
        "config",
        ["unknown setting 'endpiont'", "allowed: endpoint"],
        data=lambda tmp: config_file(tmp, 'endpiont = "x"\n'),
    ),
    Case(
        "schedule-cron-5-fields",
        ["schedule", "create", "--name", "n", "--cron", "*/5 * * * *"],
        "cron",
        ["has 5 fields", "6 fields: second minute"],
    ),
    Case(
        "schedule-cron-unknown-descriptor",
        ["schedule", "create", "--name", "n", "--cron", "@nightly"],
        "cron",
        ["not a descriptor KFP knows", "@daily", "@every DURATION"],
    ),
    Case(
        "schedule-cron-february-31",
        ["schedule", "create", "--name", "n", "--cron", "0 0 3 31 2 *"],
        "cron",
        ["never runs", "no month in '2' has a day '31'"],
    ),
    Case(
        "schedule-cron-every-5-minutes",
        ["schedule", "create", "--name", "n", "--cron", "0 */5 * * * *"],
        "cron",
        ["starts runs 5 min apart", "back to back"],
    ),
    Case(
        "schedule-cron-every-10-years",
        ["schedule", "create", "--name", "n", "--cron", "@every 87600h"],
        "cron",
        ["may never fire", "366 days"],
    ),
    Case(
        "schedule-cron-step-past-range",
        ["schedule", "create", "--name", "n", "--cron", "0 */90 * * * *"],
        "cron",
        ["a step of 90 reaches past the minute's range", "hourly"],
    ),
    Case(
        "schedule-cron-every-0s",
        ["schedule", "create", "--name", "n", "--cron", "@every 0s"],
        "cron",
        ["1s or more"],
    ),
    Case(
        "schedule-name-empty", ["schedule", "create", "--name", "", "--cron", "@daily"], "name", ["is empty"]
    ),
    Case(
        "schedule-name-leading-space",
        ["schedule", "create", "--name", " nightly", "--cron", "@daily"],
        "name",
        ["starts or ends with a space", "'nightly'"],
    ),
    Case(
        "schedule-name-bidi",
        ["schedule", "create", "--name", "\u202enightly", "--cron", "@daily"],
        "name",
        ["U+202E", "right-to-left"],
    ),
    Case(
        "submit-negative-timeout",
        ["submit", "--wait", "--timeout", "-5"],
        "timeout",
        ["0 (no limit) or more"],
    ),
    Case(
        "schedule-negative-concurrency",
        ["schedule", "create", *CRON, "--max-concurrency", "-1"],
        "max_concurrency",
        ["at least 1"],
    ),
    Case(
        "schedule-negative-lr",
        ["schedule", "create", *CRON, "--param", "learning_rate=-1"],
        "param",
        ["learning_rate=-1.0: must be greater than 0"],
    ),
    Case(
        "submit-config-not-utf8",
        ["submit", "--config", "{data}"],
        "config",
        ["config.toml is not UTF-8 text"],
        data=not_utf8_config,
        extra={"endpoint": False},
    ),
    Case(
        "submit-config-folder",
        ["submit", "--config", "{data}"],
        "config",
        ["is a folder; expected a TOML file"],
        data=lambda tmp: str(tmp),
    ),
    Case(
        "schedule-config-env-missing",
        ["schedule", "create", *CRON],
        "TRAINBOARD_CONFIG",
        ["missing.toml does not exist"],
        env={"TRAINBOARD_CONFIG": "{inputs}/missing.toml"},
    ),
    # tensorboard and compile
    Case(
        "tensorboard-port-huge",
        ["tensorboard", "--logdir", "{data}", "--port", "65536"],
        "port",
        ["must be in 1-65535, got 65536"],
        data=lambda tmp: str(tmp),
    ),
    Case(
        "tensorboard-missing-folder",
        ["tensorboard", "--logdir", "{data}/nowhere/tensorboard"],
        "logdir",
        ["nowhere/tensorboard does not exist", "trainboard local --root ROOT"],
        data=lambda tmp: str(tmp),
    ),
    Case(
        "tensorboard-missing-bucket",
        ["tensorboard", "--logdir", "gs://missing-bucket/tensorboard"],
        "logdir",
        ["gs://missing-bucket/tensorboard does not exist"],
        gcs=True,
    ),
    Case(
        "tensorboard-empty-prefix",
        ["tensorboard", "--logdir", f"gs://{BUCKET}/typo/tensorboard"],
        "logdir",
        [f"gs://{BUCKET}/typo/tensorboard does not exist"],
        gcs=True,
    ),
    Case(
        "compile-missing-folder",
        ["compile", "-o", "{data}/out/pipeline.yaml"],
        "output",
        ["/out does not exist"],
        data=lambda tmp: str(tmp),
    ),
    Case(
        "compile-under-proc",
        ["compile", "-o", "/proc/trainboard-pipeline.yaml"],
        "output",
        ["cannot write /proc/trainboard-pipeline.yaml", "-o/--output"],
    ),  # no traceback where the file system refuses; a chmod'ed folder would not stop root
    Case(
        "compile-parent-is-a-file",
        ["compile", "-o", "{data}/pipeline.yaml"],
        "output",
        ["notes.txt is a file, not a folder"],
        data=a_file,
    ),
    Case(
        "compile-name-too-long",
        ["compile", "-o", f"/tmp/{'a' * 300}/pipeline.yaml"],
        "output",
        ["File name too long", "give -o/--output a shorter path"],
    ),
    Case("compile-onto-a-folder", ["compile", "-o", "{data}"], "output", ["is a folder"], data=str),
    # manifests
    Case(
        "manifests-empty-bucket",
        ["manifests", "--bucket", "", "--overlay", "gke"],
        "bucket",
        ["not a gs:// URI"],
    ),
    Case(
        "manifests-dotdot",
        ["manifests", "--bucket", "gs://team-bucket/../x", "--overlay", "basic"],
        "bucket",
        ["'..'"],
    ),
    Case(
        "manifests-empty-overlay",
        ["manifests", "--bucket", CLUSTER_ROOT, "--overlay", ""],
        "overlay",
        ["invalid choice: ''", "'gke', 'kubeflow', 'basic'"],
    ),
    Case(
        "manifests-gke-placeholders",
        ["manifests", "--bucket", CLUSTER_ROOT, "--overlay", "gke"],
        "project",
        ["gke overlay needs --project PROJECT", "--domain HOST", "missing: --project, --domain"],
    ),
    # prepare_data (the core: images are decoded there, not by the CLI)
    Case(
        "data-1x1-images",
        ["prepare_data", "{data}"],
        "dataset",
        ["class 'dot' has no usable training images", "at least 8x8 px"],
        data=lambda tmp: class_with_only(tmp, one_pixel_png()),
    ),
    Case(
        "data-truncated-jpeg",
        ["prepare_data", "{data}"],
        "dataset",
        ["class 'dot' has no usable training images", ".jpg"],
        data=lambda tmp: class_with_only(tmp, truncated_jpeg()),
    ),
]


def refusal_timed_out(signum: int, frame: object) -> None:
    raise TimeoutError("the command was not refused within 120 s")


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No settings from the developer's machine; the working directory is the test's (the default root)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / "config"))
    for name in (
        "KF_PIPELINES_ENDPOINT",
        "KF_PIPELINES_TOKEN",
        "TRAINBOARD_TENSORBOARD_URL",
        "TRAINBOARD_CONFIG",
        # No credentials from the developer's machine, no emulator unless a case asks for the gcs fixture.
        "GOOGLE_APPLICATION_CREDENTIALS",
        "CLOUDSDK_CONFIG",
        "STORAGE_EMULATOR_HOST",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written_or_sent(
    request, tmp_path, monkeypatch, capsys, case
):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    data = case.data(inputs) if case.data else ""
    if case.undo:
        request.addfinalizer(lambda: case.undo(inputs))
    command = [arg.replace("{data}", data) for arg in case.command]
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    if case.gcs:
        request.getfixturevalue("gcs")
    for name, value in case.env.items():
        monkeypatch.setenv(name, value.replace("{inputs}", str(inputs)))

    if command[0] == "prepare_data":
        with pytest.raises(UsageError) as error:
            prepare_data(DataConfig(command[1]), str(work / "out"))
        assert error.value.field == case.field
        message = str(error.value)
    else:
        kfp = KFPServer()
        if command[0] in ("submit", "schedule"):
            command += ["--endpoint", kfp.url] if case.extra.get("endpoint", True) else []
            command += ["--param", f"root={CLUSTER_ROOT}"] if case.extra.get("root", True) else []
        elif command[0] == "local":
            command.insert(1, "--no-serve")
        # A refusal is immediate: a case that starts serving or training instead fails here, not hangs.
        signal.signal(signal.SIGALRM, refusal_timed_out)
        signal.alarm(120)
        try:
            with pytest.raises(SystemExit) as exit_:
                main(command)
        finally:
            signal.alarm(0)
            kfp.stop()
        out, err = capsys.readouterr()
        assert exit_.value.code == 2
        [message] = err.strip().splitlines()
        # An environment variable or a positional by its name, a file (champion.json) as it is.
        named_as_is = case.field.isupper() or "." in case.field
        option = case.field if named_as_is else f"--{case.field.replace('_', '-')}"
        named = " ".join(command[:2]) if command[0] in WITH_ACTIONS else command[0]  # the command refused
        assert message.startswith(f"trainboard {named}: error: {option}: "), message
        assert out == ""
        assert kfp.requests == [], "nothing may be sent before the input is checked"
    for word in case.words:
        assert word in message, message
    assert list(work.iterdir()) == [], "nothing may be written before the input is checked"
    if case.gcs:
        assert [b.name for b in storage.gcs.client().list_buckets()] == [BUCKET], "no bucket may be created"
        assert storage.list_files(f"gs://{BUCKET}") == []


REPO = Path(__file__).resolve().parents[1]
AFTER_TENSORFLOW_LOADS = {
    "tfds-not-prepared": (
        ["local", "--no-serve", "--dataset", "tfds:mnist", "--tfds-data-dir", "{tmp}/tfds"],
        "trainboard local: error: --dataset: tfds:mnist is not prepared in",
    ),
    "weights-of-another-architecture": (
        ["local", "--no-serve", "--model", "vgg16", "--image-size", "32", "--weights", "{weights}"],
        "trainboard local: error: --weights: ",
    ),
    "weights-fetch-offline": (
        ["weights", "fetch", "vgg16", "--image-size", "32"],
        "trainboard weights fetch: error: storage.googleapis.com cannot be reached from here",
    ),
}


@pytest.mark.parametrize("case", AFTER_TENSORFLOW_LOADS)
def test_a_refusal_after_tensorflow_loads_is_the_one_line_on_stderr(tmp_path, case):
    """TensorFlow's C++ log lines, absl's pre-init notice and absl's Python warnings stay out: stderr is
    the refusal, one line (a real process: they are written by TensorFlow's C++ code, not Python's)."""
    command, refusal = AFTER_TENSORFLOW_LOADS[case]
    weights = mobilenet_weights_file(tmp_path) if "{weights}" in " ".join(command) else ""
    args = [a.replace("{tmp}", str(tmp_path)).replace("{weights}", weights) for a in command]
    env = {**os.environ, "TRAINBOARD_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    main_ = "import sys; from trainboard.app.cli import main; sys.exit(main())"
    done = subprocess.run(
        [sys.executable, "-c", main_, *args, "--root", str(tmp_path / "root")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert done.returncode in (1, 2) and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(refusal), done.stderr


START_UP_LINES = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796652542.487955    3225 port.cc:153] oneDNN custom operations are on.\n"
    "I1207 14:09:02.020961    3225 cpu_feature_guard.cc:227] This TensorFlow binary is optimized\n"
)
KEPT_LINES = "W0000 00:00:1796652542.5 3225 op_kernel.cc:1] a warning\nE1207 a native error\nplain text\n"


def test_tensorflow_start_up_lines_written_past_python_are_dropped_and_the_rest_kept():
    """What C++ writes to file descriptor 2 during TensorFlow's first import (oneDNN's notice ignores
    TF_CPP_MIN_LOG_LEVEL on AVX-512 CPUs): INFO lines and absl's notice dropped, warnings, errors and
    anything else back on stderr in order, on every CPU (the lines written here as TensorFlow writes them)."""
    program = (
        "import os, sys\n"
        "from trainboard.app.cli.tensorflow_logs import start_up_lines_filtered\n"
        "with start_up_lines_filtered():\n"
        f"    os.write(2, {(START_UP_LINES + KEPT_LINES).encode()!r})\n"
        "    print('from python', file=sys.stderr)\n"
        "print('after', file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == KEPT_LINES + "from python\nafter\n"


def test_the_matrix_covers_every_way_in():
    assert len(CASES) >= 25
    assert {case.command[0] for case in CASES} == {
        "local",
        "champion",
        "gc",
        "submit",
        "schedule",
        "manifests",
        "weights",
        "tensorboard",
        "compile",
        "prepare_data",
    }
