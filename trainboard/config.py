"""Training settings and their checks, shared by the CLI, the pipeline and the components.

TensorFlow-free on purpose: the CLI checks everything here before it writes or submits anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from trainboard import storage


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


@dataclass(frozen=True)
class TrainingConfig:
    model: str = "small_cnn"
    epochs: int = 8
    batch_size: int = 32
    image_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 0


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


def check_positive(field: str, value: float) -> None:
    if not value > 0:
        raise UsageError(field, f"must be greater than 0, got {value}")


def check_run_name(run: str) -> None:
    if not _RUN_RE.match(run):
        raise UsageError(
            "run_name",
            f"{run!r} is not a valid run name; use 1-100 of letters, digits, '.', '_', '-' "
            "(no slashes), starting with a letter or digit",
        )


def check_config(config: TrainingConfig) -> None:
    check_model(config.model, config.image_size)
    check_positive("epochs", config.epochs)
    check_positive("batch_size", config.batch_size)
    check_positive("learning_rate", config.learning_rate)


def check_root(root: str) -> str:
    """The storage root, normalised; UsageError when it is neither a local path nor gs://."""
    try:
        return storage.check_uri(root)
    except storage.StorageURIError as e:
        raise UsageError("root", str(e)) from None
