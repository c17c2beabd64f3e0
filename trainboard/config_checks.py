"""The checks of the parameters declared in config.py, each raising UsageError naming the field: the CLI
runs them before it writes or submits anything, and each task again (start_run all at once)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from trainboard.checks import (
    check_choice,
    check_count,
    check_fraction,
    check_http_url,
    check_non_negative,
    check_positive,
)
from trainboard.config import (
    LR_SCHEDULES,
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    MAX_LEARNING_RATE,
    MAX_SEED,
    MAX_SYNC_SECONDS,
    MAX_WORKERS,
    PRECISIONS,
    DataConfig,
    PromotionRule,
    TrainingConfig,
    field_values,
    model_spec,
)
from trainboard.errors import UsageError
from trainboard.sources.spec import Source, parse_source
from trainboard.weights import NONE, check_weights


def check_model(model: str, image_size: int) -> None:
    spec = model_spec(model)
    if not spec.min_image_size <= image_size <= spec.max_image_size:
        raise UsageError(
            "image_size",
            f"{image_size} is outside the range {model} accepts: "
            f"{spec.min_image_size} to {spec.max_image_size} pixels",
        )


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
    check_positive("workers", config.workers, MAX_WORKERS)
    if config.batch_size % config.workers:  # each worker takes an equal part of every global batch
        raise UsageError(
            "workers", f"batch_size {config.batch_size} must be a multiple of workers {config.workers}"
        )
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
    if not 0 <= config.race_margin < 1:
        raise UsageError(
            "race_margin", f"must be in [0, 1) (an accuracy gap; 0: off), got {config.race_margin}"
        )
    check_positive("race_patience", config.race_patience, MAX_EPOCHS)
    check_non_negative("race_warmup", config.race_warmup)
    check_positive("fine_tune_learning_rate", config.fine_tune_learning_rate, MAX_LEARNING_RATE)


def check_pipeline_parameters(values: Mapping[str, Any]) -> None:
    """Every check a task makes on the pipeline's parameters (by their names in ``values``), at once: the
    first task runs it, and submit / schedule before sending."""
    check_config(TrainingConfig(**field_values(TrainingConfig, values)))
    check_data_config(DataConfig(**field_values(DataConfig, values)))
    check_promotion_rule(PromotionRule(**field_values(PromotionRule, values)))
    check_count("accelerator_count", values["accelerator_count"])
    if values["tensorboard_url"]:
        check_http_url("tensorboard_url", values["tensorboard_url"])
