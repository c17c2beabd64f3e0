"""The pipeline's parameters, declared once: what data, how to train, when to promote.

Each field is a `trainboard local` option (its help is the option's help) and a pipeline parameter of the
same name, type and description; the defaults here are the local ones (`trainboard local`: demo data, a
small CNN on the CPU), and CLUSTER_DEFAULTS holds the pipeline's where they differ (the reference:
VGG16 on caltech101). The component and pipeline signatures are written out for KFP's UI;
tests/test_parameters.py fails when one of them drifts from this module.

TensorFlow-free on purpose: the CLI checks everything here before it writes or submits anything.
"""

from __future__ import annotations

import math
import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from trainboard import layout, storage
from trainboard.errors import UsageError
from trainboard.sources.spec import Source, parse_source
from trainboard.weights import NONE, check_weights


@dataclass(frozen=True)
class ModelSpec:
    min_image_size: int
    max_image_size: int
    default_image_size: int


# Minimum sizes are what the Keras architectures accept (five 2x poolings need >= 32 px).
MODELS: dict[str, ModelSpec] = {
    "small_cnn": ModelSpec(16, 512, 32),
    "vgg16": ModelSpec(32, 512, 224),
    "resnet50": ModelSpec(32, 512, 224),
    "mobilenet_v3_small": ModelSpec(32, 512, 224),
    "mobilenet_v3_large": ModelSpec(32, 512, 224),
    "efficientnet_b0": ModelSpec(32, 512, 224),
}

_RUN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


MAX_EPOCHS, MAX_BATCH_SIZE, MAX_LEARNING_RATE, MAX_SYNC_SECONDS = 10_000, 65_536, 10.0, 3600.0
MAX_SEED = 2**32 - 1  # numpy's, which keras.utils.set_random_seed seeds
LR_SCHEDULES = ("constant", "cosine")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")  # auto: mixed_float16 on GPUs


def _option(default: Any, help: str, choices: tuple[str, ...] = ()) -> Any:
    """A field with its help text and, for a closed set of values, its choices (argparse lists them)."""
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and how missing splits are carved."""

    dataset: str = _option(
        "demo",
        "Data source: demo (generated offline), tfds:NAME[:CONFIG][@VERSION], or folder:URI with "
        "URI/<class>/<image> or URI/<split>/<class>/<image> (a local folder or gs://BUCKET/PREFIX).",
    )
    validation_fraction: float = _option(
        0.1, "Share carved (stratified) from train for validation where the source has no validation split."
    )
    test_fraction: float = _option(0.1, "The same for a missing test split.")
    tfds_data_dir: str = _option(
        "", "Where TFDS caches downloads and prepared data (a gs:// prefix on a cluster)."
    )
    max_image_pixels: int = _option(
        40_000_000,
        "Skip images of more pixels than this (width x height, read from the file's header before any "
        "decoding), counted in the dataset card: one huge image or decompression bomb cannot take gigabytes "
        "of memory.",
    )


@dataclass(frozen=True)
class TrainingConfig:
    """How a model is trained."""

    model: str = _option("small_cnn", f"Keras architecture: {', '.join(MODELS)}.", tuple(MODELS))
    epochs: int = _option(8, "Training epochs.")
    batch_size: int = _option(32, "Examples per training step (over all replicas).")
    image_size: int = _option(32, "Square input size in pixels.")
    learning_rate: float = _option(3e-3, "Adam's (initial) learning rate.")
    lr_schedule: str = _option("cosine", f"Learning-rate schedule: {', '.join(LR_SCHEDULES)}.", LR_SCHEDULES)
    label_smoothing: float = _option(0.0, "Label smoothing in [0, 1).")
    early_stopping_patience: int = _option(
        0,
        "Stop after this many epochs without a better val_loss (in the fine-tuning after frozen epochs); "
        "0 never stops early.",
    )
    augment: bool = _option(False, "Random flips, crops and colour changes of the training images.")
    precision: str = _option(
        "auto", f"{', '.join(PRECISIONS)}; auto is mixed_float16 on GPUs, else float32.", PRECISIONS
    )
    weights: str = _option(
        "none",
        "The backbone's start: none (untrained), imagenet (Keras's ImageNet weights, downloaded once and "
        "cached under <root>/weights/), or a weights file (.h5, a local path or gs:// URI).",
    )
    freeze_epochs: int = _option(
        0,
        "Train only the head for this many of the epochs, the pretrained backbone frozen (BatchNorm in "
        "inference mode), then fine-tune; 0 trains everything from the first epoch.",
    )
    fine_tune_layers: int = _option(
        0,
        "After the frozen epochs, fine-tune the top N backbone layers that have weights (BatchNorm stays "
        "frozen); 0 fine-tunes them all.",
    )
    fine_tune_learning_rate: float = _option(1e-5, "Adam's (initial) learning rate after the frozen epochs.")
    seed: int = _option(0, "Seed of data splits, shuffling and initial weights.")
    sync_seconds: float = _option(10.0, "The most TensorBoard logs in the root lag behind training.")
    batch_scalars_every: int = _option(
        0, "Also log per-batch scalars every N batches; 0 logs per epoch only."
    )
    histograms: bool = _option(False, "Log weight histograms every epoch.")
    profile_batches: str = _option(
        "", "Profile these training steps, START[,STOP] (e.g. 10,20); empty: none."
    )


@dataclass(frozen=True)
class PromotionRule:
    """When a new model replaces the champion."""

    min_accuracy: float = _option(
        0.0,
        "Promote the model (make it the champion in <root>/champion.json, copied to <root>/models/champion/) "
        "only when its test accuracy is at least this, in [0, 1].",
    )
    min_improvement: float = _option(
        0.0,
        "And only when it beats the champion's test accuracy by more than 0 and by at least this, in [0, 1]; "
        "an equal accuracy keeps the champion.",
    )
    min_significance: float = _option(
        0.0,
        "And, when in (0, 1), only when the gain is significant: McNemar's exact test on the two models' "
        "per-example correctness on this run's test split gives a p-value at most this; 0 (or 1) disables "
        "it.",
    )
    force_promote: bool = _option(
        False, "Promote whatever the metrics; the evaluation report says it was forced."
    )


CONFIGS = (DataConfig, TrainingConfig, PromotionRule)
# The cluster pipeline's defaults where they differ from the local ones above: the reference job,
# VGG16 on caltech101 at its native 224 px, from ImageNet weights: the new head trained alone for 3
# epochs at Adam's usual rate, then the whole backbone fine-tuned at 1e-5 (Keras's transfer-learning
# guide), with augmentation.
CLUSTER_DEFAULTS: dict[str, Any] = {
    "dataset": "tfds:caltech101",
    "model": "vgg16",
    "epochs": 10,
    "image_size": 224,
    "learning_rate": 1e-3,
    "augment": True,
    "weights": "imagenet",
    "freeze_epochs": 3,
}


def cluster_default(name: str) -> Any:
    """The pipeline's default for config field ``name``."""
    if name in CLUSTER_DEFAULTS:
        return CLUSTER_DEFAULTS[name]
    return next(f.default for config in CONFIGS for f in fields(config) if f.name == name)


def field_values(config: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` that are fields of the dataclass ``config``; KeyError when one is
    missing (a signature that lacks a field is a bug, not something to skip)."""
    return {f.name: values[f.name] for f in fields(config)}


def model_spec(model: str) -> ModelSpec:
    if model not in MODELS:
        raise UsageError("model", f"unknown model {model!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[model]


def check_model(model: str, image_size: int) -> None:
    spec = model_spec(model)
    if not spec.min_image_size <= image_size <= spec.max_image_size:
        raise UsageError(
            "image_size",
            f"{image_size} is outside the range {model} accepts: "
            f"{spec.min_image_size} to {spec.max_image_size} pixels",
        )


def check_positive(field: str, value: float, at_most: float = math.inf) -> None:
    if not value > 0:
        raise UsageError(field, f"must be greater than 0, got {value}")
    if value > at_most:
        raise UsageError(field, f"must be at most {at_most}, got {value}")


def check_run_name(run: str) -> None:
    if not _RUN_RE.fullmatch(run):  # fullmatch: `$` would let a trailing newline through
        raise UsageError(
            "run_name",
            f"{run!r} is not a valid run name; use 1-100 of letters, digits, '.', '_', '-' "
            "(no slashes), starting with a letter or digit",
        )
    if run == layout.CHAMPION:
        raise UsageError("run_name", f"{run!r} is reserved: <root>/models/{run}/ holds the champion's model")


def check_choice(field: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UsageError(field, f"{value!r} is not one of: {', '.join(allowed)}")


def check_non_negative(field: str, value: float) -> None:
    if value < 0:
        raise UsageError(field, f"must be 0 or more, got {value}")


def check_count(field: str, value: str) -> None:
    """A whole number 0 or more, written as a string (a pod-spec value the KFP driver reads as a string)."""
    if not re.fullmatch(r"[0-9]+", value):
        raise UsageError(
            field, f'must be a whole number 0 or more, written as a string (e.g. "1"), got {value!r}'
        )


def check_fraction(field: str, value: float) -> None:
    if not 0 < value < 1:
        raise UsageError(field, f"must be between 0 and 1 (exclusive), got {value}")


def check_data_config(data: DataConfig) -> Source:
    """The fractions and the source spec (not the data behind it: trainboard.sources.check_source looks)."""
    check_fraction("validation_fraction", data.validation_fraction)
    check_fraction("test_fraction", data.test_fraction)
    if data.validation_fraction + data.test_fraction >= 1:
        raise UsageError("test_fraction", "validation_fraction + test_fraction must stay below 1")
    check_positive("max_image_pixels", data.max_image_pixels)
    return parse_source(data.dataset)


def check_promotion_rule(rule: PromotionRule) -> None:
    for name in ("min_accuracy", "min_improvement"):
        value = getattr(rule, name)
        if not 0 <= value <= 1:
            raise UsageError(name, f"must be in [0, 1] (an accuracy), got {value}")
    if not 0 <= rule.min_significance <= 1:
        raise UsageError(
            "min_significance",
            f"must be in [0, 1] (a p-value; 0 disables the test), got {rule.min_significance}",
        )


def check_config(config: TrainingConfig) -> None:
    check_model(config.model, config.image_size)
    # Upper bounds far above any sensible run: a typo (an extra digit or three) fails here, not overnight.
    check_positive("epochs", config.epochs, MAX_EPOCHS)
    check_positive("batch_size", config.batch_size, MAX_BATCH_SIZE)
    check_positive("learning_rate", config.learning_rate, MAX_LEARNING_RATE)
    check_choice("lr_schedule", config.lr_schedule, LR_SCHEDULES)
    check_choice("precision", config.precision, PRECISIONS)
    if not 0 <= config.label_smoothing < 1:
        raise UsageError("label_smoothing", f"must be in [0, 1), got {config.label_smoothing}")
    check_non_negative("early_stopping_patience", config.early_stopping_patience)
    check_non_negative("batch_scalars_every", config.batch_scalars_every)
    check_positive("sync_seconds", config.sync_seconds, MAX_SYNC_SECONDS)
    if not 0 <= config.seed <= MAX_SEED:
        raise UsageError("seed", f"must be in [0, {MAX_SEED}], got {config.seed}")
    if config.profile_batches:
        steps = re.fullmatch(r"(\d+)(?:,(\d+))?", config.profile_batches)
        if not steps:
            raise UsageError(
                "profile_batches", f"{config.profile_batches!r} is not START[,STOP] (e.g. 10,20)"
            )
        if steps[2] is not None and int(steps[1]) > int(steps[2]):
            raise UsageError("profile_batches", f"{config.profile_batches!r}: START must not be after STOP")
    check_weights(config.weights, config.model)
    if not 0 <= config.freeze_epochs <= config.epochs:
        raise UsageError(
            "freeze_epochs", f"must be in [0, epochs={config.epochs}], got {config.freeze_epochs}"
        )
    if config.freeze_epochs and config.weights == NONE:
        raise UsageError(
            "freeze_epochs",
            "freezing an untrained backbone trains nothing; use it with --weights imagenet or a file",
        )
    check_non_negative("fine_tune_layers", config.fine_tune_layers)
    check_positive("fine_tune_learning_rate", config.fine_tune_learning_rate, MAX_LEARNING_RATE)


def check_http_url(field: str, url: str) -> str:
    """``url`` without a trailing slash, or UsageError unless it is http(s)://HOST[...] (shown without
    any user:password@ it holds)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))
        raise UsageError(field, f"{shown!r} is not an http:// or https:// URL with a host")
    return url.rstrip("/")


def check_pipeline_parameters(values: Mapping[str, Any]) -> None:
    """Every check a task makes on the pipeline's parameters (by their names in ``values``), at once: the
    first task runs it, and submit / schedule before sending."""
    check_config(TrainingConfig(**field_values(TrainingConfig, values)))
    check_data_config(DataConfig(**field_values(DataConfig, values)))
    check_promotion_rule(PromotionRule(**field_values(PromotionRule, values)))
    check_count("accelerator_count", values["accelerator_count"])
    if values["tensorboard_url"]:
        check_http_url("tensorboard_url", values["tensorboard_url"])


def root_exists(root: str, field: str = "root") -> bool:
    """Whether ``root`` (checked) holds anything: a folder, or objects under the gs:// prefix; UsageError
    naming ``field`` when gs:// has no credentials to look with."""
    try:
        return storage.folder_exists(root)
    except storage.NoCredentials as e:
        raise UsageError(field, str(e)) from None


def check_root(root: str, will_write: bool = False) -> str:
    """The storage root, normalised; UsageError when it is neither a local path nor gs://, when it starts or
    ends with a space, or, with ``will_write`` (this machine writes there next), when it is a local path
    that is not a writable folder (nor can be made one) or a bucket that does not exist or cannot be
    reached with these credentials."""
    if root.strip() and root != root.strip():
        # A stray space from a copied path makes a folder named " x" beside "x": nobody means that.
        raise UsageError("root", f"{root!r} starts or ends with a space; remove it")
    try:
        root = storage.check_uri(root)
    except storage.StorageURIError as e:
        raise UsageError("root", str(e)) from None
    if will_write and not storage.is_gcs(root):
        _check_writable_folder(Path(root))
    if will_write and storage.is_gcs(root):
        bucket = storage.split_gcs(root)[0]
        try:
            exists = storage.bucket_exists(root)
        except storage.NoCredentials as e:
            raise UsageError("root", str(e)) from None
        if not exists:
            raise UsageError(
                "root",
                f"bucket {bucket} does not exist or these credentials cannot see it; expected an existing "
                f"bucket (create it: gcloud storage buckets create gs://{bucket}) or a local directory",
            )
    return root


def _check_writable_folder(path: Path) -> None:
    """``path`` is a folder this user can write in, or does not exist yet and its nearest existing
    parent is one (it is made there)."""
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise UsageError("root", f"{existing} is a file; expected a folder (or a path to make one)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(
            "root", f"{existing} is not writable by this user; expected a folder you can write in"
        )
