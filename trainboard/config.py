"""The pipeline's parameters, declared once: what data, how to train, when to promote.

Each field is a `trainboard local` option (its help is the option's help) and a pipeline parameter of the
same name, type and description; the defaults here are the local ones (`trainboard local`: demo data, a
small CNN on the CPU), and CLUSTER_DEFAULTS holds the pipeline's where they differ (the reference:
VGG16 on caltech101). The component and pipeline signatures are written out for KFP's UI;
tests/test_parameters.py fails when one of them drifts from this module.

Declarations only: a field's choices and bounds are declared here with its help, and config_checks.py
checks every declared one (and what is not a simple bound: the model's image sizes, the weights, the
source's spec, the values that depend on each other); roots.py checks the storage root.
TensorFlow-free on purpose: the CLI checks everything before it writes or submits anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from trainboard.errors import UsageError


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

# Upper bounds far above any sensible run: a typo (an extra digit or three) fails the checks, not overnight.
MAX_EPOCHS, MAX_BATCH_SIZE, MAX_LEARNING_RATE, MAX_SYNC_SECONDS = 10_000, 65_536, 10.0, 3600.0
MAX_WORKERS = 64  # a typo guard, as the other maxima: far above the nodes one training job spans here
MAX_SEED = 2**32 - 1  # numpy's, which keras.utils.set_random_seed seeds
LR_SCHEDULES = ("constant", "cosine")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")  # auto: mixed_float16 on GPUs


@dataclass(frozen=True)
class Bounds:
    """The range a number must lie in: its low end ``above`` (exclusive) or ``at_least`` (inclusive), its
    high end ``below`` (exclusive) or ``at_most`` (inclusive), or none; ``note`` says in the refusal what
    the number is."""

    above: float | None = None
    at_least: float | None = None
    below: float | None = None
    at_most: float | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if (self.above is None) == (self.at_least is None) or None not in (self.below, self.at_most):
            raise ValueError(f"{self}: give one of above and at_least, and at most one of below and at_most")


POSITIVE, NON_NEGATIVE = Bounds(above=0), Bounds(at_least=0)
FRACTION = Bounds(above=0, below=1)
ACCURACY = Bounds(at_least=0, at_most=1, note="an accuracy")


def _option(default: Any, help: str, choices: tuple[str, ...] = (), bounds: Bounds | None = None) -> Any:
    """A field with its help text and, for a closed set of values, its choices (argparse lists them), or
    for a number its bounds (config_checks.check_declared checks both)."""
    return field(default=default, metadata={"help": help, "choices": choices, "bounds": bounds})


@dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and how missing splits are carved."""

    dataset: str = _option(
        "demo",
        "Data source: demo (generated offline), tfds:NAME[:CONFIG][@VERSION], or folder:URI with "
        "URI/<class>/<image> or URI/<split>/<class>/<image> (a local folder or gs://BUCKET/PREFIX).",
    )
    validation_fraction: float = _option(
        0.1,
        "Share carved (stratified) from train for validation where the source has no validation split.",
        bounds=FRACTION,
    )
    test_fraction: float = _option(0.1, "The same for a missing test split.", bounds=FRACTION)
    tfds_data_dir: str = _option(
        "", "Where TFDS caches downloads and prepared data (a gs:// prefix on a cluster)."
    )
    max_image_pixels: int = _option(
        40_000_000,
        "Skip images of more pixels than this (width x height, read from the file's header before any "
        "decoding), counted in the dataset card: one huge image or decompression bomb cannot take gigabytes "
        "of memory.",
        bounds=POSITIVE,
    )


@dataclass(frozen=True)
class TrainingConfig:
    """How a model is trained."""

    model: str = _option("small_cnn", f"Keras architecture: {', '.join(MODELS)}.", tuple(MODELS))
    epochs: int = _option(8, "Training epochs.", bounds=Bounds(above=0, at_most=MAX_EPOCHS))
    batch_size: int = _option(
        32, "Examples per training step (over all replicas).", bounds=Bounds(above=0, at_most=MAX_BATCH_SIZE)
    )
    workers: int = _option(
        1,
        "Worker processes that train together (MultiWorkerMirroredStrategy), each on its share of the data "
        "and batch_size / workers examples a step: 1 trains in the train task itself; more hand off to "
        "that many processes (trainboard local) or nodes (a Kubeflow Trainer TrainJob on a cluster). "
        "batch_size must be a multiple of it.",
        bounds=Bounds(above=0, at_most=MAX_WORKERS),
    )
    image_size: int = _option(32, "Square input size in pixels.")
    learning_rate: float = _option(
        3e-3, "Adam's (initial) learning rate.", bounds=Bounds(above=0, at_most=MAX_LEARNING_RATE)
    )
    lr_schedule: str = _option("cosine", f"Learning-rate schedule: {', '.join(LR_SCHEDULES)}.", LR_SCHEDULES)
    label_smoothing: float = _option(0.0, "Label smoothing in [0, 1).", bounds=Bounds(at_least=0, below=1))
    early_stopping_patience: int = _option(
        0,
        "Stop after this many epochs without a better val_loss (in the fine-tuning after frozen epochs); "
        "0 never stops early.",
        bounds=NON_NEGATIVE,
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
        bounds=NON_NEGATIVE,
    )
    fine_tune_learning_rate: float = _option(
        1e-5,
        "Adam's (initial) learning rate after the frozen epochs.",
        bounds=Bounds(above=0, at_most=MAX_LEARNING_RATE),
    )
    seed: int = _option(
        0, "Seed of data splits, shuffling and initial weights.", bounds=Bounds(at_least=0, at_most=MAX_SEED)
    )
    sync_seconds: float = _option(
        10.0,
        "The most TensorBoard logs in the root lag behind training.",
        bounds=Bounds(above=0, at_most=MAX_SYNC_SECONDS),
    )
    batch_scalars_every: int = _option(
        0, "Also log per-batch scalars every N batches; 0 logs per epoch only.", bounds=NON_NEGATIVE
    )
    histograms: bool = _option(False, "Log weight histograms every epoch.")
    profile_batches: str = _option(
        "", "Profile these training steps, START[,STOP] (e.g. 10,20); empty: none."
    )
    race_margin: float = _option(
        0.0,
        "Stop the run when its validation accuracy trails the champion's at the same point of training by "
        "more than this for race_patience epochs in a row (after race_warmup epochs); 0 never stops a run "
        "for trailing. A broken run (a NaN loss, or chance-level accuracy where the champion was well "
        "above it) stops regardless.",
        bounds=Bounds(at_least=0, below=1, note="an accuracy gap; 0: off"),
    )
    race_patience: int = _option(
        3,
        "Epochs in a row the run must trail by more than race_margin.",
        bounds=Bounds(above=0, at_most=MAX_EPOCHS),
    )
    race_warmup: int = _option(
        2, "Epochs trained before the race may stop a run (a slow start is no verdict).", bounds=NON_NEGATIVE
    )
    sweep: str = _option(
        "",
        "The nightly tournament: trials that override these training settings, NAME=V1,V2[;NAME=V3,...] "
        "(e.g. learning_rate=0.001,0.003;model=small_cnn,mobilenet_v3_small), every combination a trial, "
        "at most 16; each trains as run <run>-t<N>, races the champion and its siblings, and only the best "
        "on validation is tested and may be promoted. Empty: one run as given.",
    )


@dataclass(frozen=True)
class PromotionRule:
    """When a new model replaces the champion."""

    min_accuracy: float = _option(
        0.0,
        "Promote the model (make it the champion in <root>/champion.json, copied to <root>/models/champion/) "
        "only when its test accuracy is at least this, in [0, 1].",
        bounds=ACCURACY,
    )
    min_improvement: float = _option(
        0.0,
        "And only when it beats the champion's test accuracy by more than 0 and by at least this, in [0, 1]; "
        "an equal accuracy keeps the champion.",
        bounds=ACCURACY,
    )
    min_significance: float = _option(
        0.0,
        "And, when in (0, 1), only when the gain is significant: McNemar's exact test on the two models' "
        "per-example correctness on this run's test split gives a p-value at most this; 0 (or 1) disables "
        "it.",
        bounds=Bounds(at_least=0, at_most=1, note="a p-value; 0 disables the test"),
    )
    force_promote: bool = _option(
        False, "Promote whatever the metrics; the evaluation report says it was forced."
    )
    model_registry: str = _option(
        "",
        "The Kubeflow Model Registry's URL (http(s)://HOST[:PORT]): a promotion registers the model as a "
        "version (the run) there, a rollback moves its champion mark; empty: none. Its token comes from "
        "the Kubernetes Secret trainboard-model-registry (key token) or TRAINBOARD_MODEL_REGISTRY_TOKEN, "
        "never a parameter. A registry that fails never blocks a promotion: the report says so.",
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
