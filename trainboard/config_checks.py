"""The checks of the parameters declared in config.py, each raising UsageError naming the field: the CLI
runs them before it writes or submits anything, and each task again (start_run all at once)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from trainboard.checks import check_choice, check_count, check_http_url
from trainboard.config import Bounds, DataConfig, PromotionRule, TrainingConfig, field_values, model_spec
from trainboard.errors import UsageError
from trainboard.sources.spec import Source, parse_source
from trainboard.sweep import (
    CLUSTER_PARALLELISM,
    PARALLELISM,
    PARALLELISM_ENV,
    parse_sweep,
    settings_of,
    trial_config,
)
from trainboard.sweep import FIELD as SWEEP
from trainboard.weights import NONE, check_weights


def check_model(model: str, image_size: int) -> None:
    spec = model_spec(model)
    if not spec.min_image_size <= image_size <= spec.max_image_size:
        raise UsageError(
            "image_size",
            f"{image_size} is outside the range {model} accepts: "
            f"{spec.min_image_size} to {spec.max_image_size} pixels",
        )


def _range_words(bounds: Bounds, low_ok: bool) -> str:
    """The range as a refusal says it, by its shape: greater than 0 (and at most N: the end it missed), N
    or more, between 0 and 1 (exclusive), in [0, N] or [0, N)."""
    if bounds.above is not None and bounds.below is not None:
        return f"between {bounds.above} and {bounds.below} (exclusive)"
    if bounds.above is not None:
        return f"at most {bounds.at_most}" if low_ok else f"greater than {bounds.above}"
    if bounds.at_most is not None:
        return f"in [{bounds.at_least}, {bounds.at_most}]"
    if bounds.below is not None:
        return f"in [{bounds.at_least}, {bounds.below})"
    return f"{bounds.at_least} or more"


def check_bounds(name: str, value: float, bounds: Bounds) -> None:
    """UsageError naming ``name`` unless ``value`` lies within ``bounds`` (NaN lies within none)."""
    if bounds.above is not None:
        low_ok = value > bounds.above
    else:
        low_ok = bounds.at_least is not None and value >= bounds.at_least
    if bounds.below is not None:
        high_ok = value < bounds.below
    else:
        high_ok = bounds.at_most is None or value <= bounds.at_most
    if not (low_ok and high_ok):
        note = f" ({bounds.note})" if bounds.note else ""
        raise UsageError(name, f"must be {_range_words(bounds, low_ok)}{note}, got {value}")


def check_declared(config: DataConfig | TrainingConfig | PromotionRule) -> None:
    """Every choice and bound declared with ``config``'s fields (config.py), in their order."""
    for f in fields(config):
        value = getattr(config, f.name)
        if f.metadata["choices"]:
            check_choice(f.name, value, f.metadata["choices"])
        if f.metadata["bounds"]:
            check_bounds(f.name, value, f.metadata["bounds"])


def check_data_config(data: DataConfig) -> Source:
    """The declared bounds and the source spec (not the data behind it: trainboard.sources.check_source
    looks)."""
    check_declared(data)
    if data.validation_fraction + data.test_fraction >= 1:
        raise UsageError("test_fraction", "validation_fraction + test_fraction must stay below 1")
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", data.tfds_data_dir)
    if scheme and scheme[1] != "gs":  # what the tasks and trainboard/storage read: local paths and gs://
        raise UsageError(
            "tfds_data_dir",
            f"{scheme[1]}:// is not supported; expected a local folder or gs://BUCKET[/PREFIX] (a gs:// "
            "prefix on a cluster)",
        )
    return parse_source(data.dataset)


def check_promotion_rule(rule: PromotionRule) -> None:
    """The rule's declared bounds: each threshold in [0, 1]; the Model Registry's URL is http(s)."""
    check_declared(rule)
    if rule.model_registry:
        check_http_url("model_registry", rule.model_registry)


def check_config(config: TrainingConfig) -> None:
    """The model first (its message names the models; image_size's range is the model's), then the
    declared choices and bounds, then what depends on more than one value or on more than a range."""
    check_model(config.model, config.image_size)
    check_declared(config)
    if config.batch_size % config.workers:  # each worker takes an equal part of every global batch
        raise UsageError(
            "workers", f"batch_size {config.batch_size} must be a multiple of workers {config.workers}"
        )
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
    if config.sweep:
        check_trials(config)


def check_trials(config: TrainingConfig) -> None:
    """Every trial of ``config.sweep`` checked as a single run's settings are, before any work: a bad
    trial refuses the whole sweep, naming it."""
    for number, overrides in enumerate(parse_sweep(config.sweep), 1):
        try:
            check_config(trial_config(config, overrides))
        except UsageError as e:
            raise UsageError(SWEEP, f"trial {number} ({settings_of(overrides)}): {e}") from None


def check_pipeline_parameters(values: Mapping[str, Any]) -> None:
    """Every check a task makes on the pipeline's parameters (by their names in ``values``), at once: the
    first task runs it, and submit / schedule before sending."""
    check_config(TrainingConfig(**field_values(TrainingConfig, values)))
    check_data_config(DataConfig(**field_values(DataConfig, values)))
    check_promotion_rule(PromotionRule(**field_values(PromotionRule, values)))
    check_count("accelerator_count", values["accelerator_count"])
    if values["tensorboard_url"]:
        check_http_url("tensorboard_url", values["tensorboard_url"])


def cluster_parallelism() -> int:
    """The compiled pipeline's limit of trials at once: TRAINBOARD_SWEEP_PARALLELISM when set, else
    CLUSTER_PARALLELISM; UsageError naming the variable when it is not a whole number within PARALLELISM."""
    given = os.environ.get(PARALLELISM_ENV, "").strip()
    if not given:
        return CLUSTER_PARALLELISM
    try:
        value = int(given)
    except ValueError:
        raise UsageError(PARALLELISM_ENV, f"{given!r} is not a whole number of trials at once") from None
    check_bounds(PARALLELISM_ENV, value, PARALLELISM)
    return value
