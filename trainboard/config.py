"""Training settings and their checks, shared by the CLI, the pipeline and the components.

TensorFlow-free on purpose: the CLI checks everything here before it writes or submits anything.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from trainboard import layout, storage


class UsageError(ValueError):
    """Bad input: which field, what was wrong and what is allowed. The CLI exits 2 on it."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


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

_RUN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


MAX_EPOCHS, MAX_BATCH_SIZE, MAX_LEARNING_RATE, MAX_SYNC_SECONDS = 10_000, 65_536, 10.0, 3600.0
LR_SCHEDULES = ("constant", "cosine")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")  # auto: mixed_float16 on GPUs


def _option(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrainingConfig:
    """How a model is trained. Each field is a `trainboard local` option and a pipeline parameter."""

    model: str = _option("small_cnn", f"one of {', '.join(MODELS)}")
    epochs: int = _option(8, "epochs to train")
    batch_size: int = _option(32, "examples per step (over all replicas)")
    image_size: int = _option(32, "square input size in pixels; default: the model's own default")
    learning_rate: float = _option(3e-3, "Adam's (initial) learning rate")
    lr_schedule: str = _option("cosine", f"learning-rate schedule: {', '.join(LR_SCHEDULES)}")
    label_smoothing: float = _option(0.0, "label smoothing in [0, 1)")
    early_stopping_patience: int = _option(0, "stop after N epochs without a better val_loss; 0: never")
    augment: bool = _option(False, "random flips, crops and colour changes of the training images")
    precision: str = _option("auto", f"{', '.join(PRECISIONS)}; auto is mixed_float16 on GPUs, else float32")
    weights_uri: str = _option("", "pretrained backbone weights file in the bucket (nothing is downloaded)")
    seed: int = _option(0, "seed of data splits, shuffling and initial weights")
    sync_seconds: float = _option(10.0, "the most TensorBoard logs in the root lag behind training")
    batch_scalars_every: int = _option(0, "also log per-batch scalars every N batches; 0: per epoch only")
    histograms: bool = _option(False, "log weight histograms every epoch")
    profile_batches: str = _option("", "profile these training steps, START[,STOP] (e.g. 10,20)")


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
    if not _RUN_RE.match(run):
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


@dataclass(frozen=True)
class PromotionRule:
    """When a new model replaces the champion. Each field is a `trainboard local` option and a pipeline
    parameter."""

    min_accuracy: float = _option(0.0, "promote only models with at least this test accuracy, in [0, 1]")
    min_improvement: float = _option(
        0.0, "and only when they beat the champion's test accuracy by more than 0 and at least this"
    )
    force_promote: bool = _option(False, "promote this run's model whatever its metrics (the report says so)")


def check_promotion_rule(rule: PromotionRule) -> None:
    for name in ("min_accuracy", "min_improvement"):
        value = getattr(rule, name)
        if not 0 <= value <= 1:
            raise UsageError(name, f"must be in [0, 1] (an accuracy), got {value}")


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
    if config.profile_batches and not re.fullmatch(r"\d+(,\d+)?", config.profile_batches):
        raise UsageError("profile_batches", f"{config.profile_batches!r} is not START[,STOP] (e.g. 10,20)")
    if config.weights_uri:
        if config.model == "small_cnn":
            raise UsageError(
                "weights_uri", "small_cnn has no pretrained weights; use it with weights_uri empty"
            )
        try:
            storage.check_uri(config.weights_uri)
        except storage.StorageURIError as e:
            raise UsageError("weights_uri", str(e)) from None


def check_root(root: str, must_exist: bool = False) -> str:
    """The storage root, normalised; UsageError when it is neither a local path nor gs://, or, with
    ``must_exist`` (this machine writes there next), when its bucket does not exist."""
    try:
        root = storage.check_uri(root)
    except storage.StorageURIError as e:
        raise UsageError("root", str(e)) from None
    if must_exist and not storage.bucket_exists(root):
        bucket = storage.split_gcs(root)[0]
        raise UsageError(
            "root",
            f"bucket {bucket} does not exist or these credentials cannot see it; expected an existing "
            f"bucket (create it: gcloud storage buckets create gs://{bucket}) or a local directory",
        )
    return root
