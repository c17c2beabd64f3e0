"""What `trainboard local` was asked to run, every input checked before any work starts."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from functools import partial

from trainboard import layout
from trainboard.app.cli.local_sweep import check_sweep_run
from trainboard.app.cli.tensorboard import check_port
from trainboard.checks import check_http_url
from trainboard.config import DataConfig, PromotionRule, TrainingConfig, field_values, model_spec
from trainboard.config_checks import (
    check_config,
    check_data_config,
    check_promotion_rule,
    cluster_parallelism,
)
from trainboard.errors import UsageError
from trainboard.mlflow_log import TRACKING_URI_ENV
from trainboard.roots import check_root


def _training_config(args: argparse.Namespace) -> TrainingConfig:
    values = field_values(TrainingConfig, vars(args))
    if values["image_size"] is None:
        values["image_size"] = model_spec(values["model"]).default_image_size
    return TrainingConfig(**values)


def _check_champion(root: str, run: str, rule: PromotionRule) -> None:
    from trainboard.artifacts.champion import champion_model_problem, check_records

    check_records(root, run)  # a damaged record, or a run name already promoted
    problem = champion_model_problem(root)
    if problem and not rule.force_promote:
        raise UsageError(layout.CHAMPION_RECORD, problem)


@dataclass(frozen=True, kw_only=True)
class Request:
    """What `trainboard local` was asked to run, checked: where, under which name, with what."""

    root: str
    run: str
    data: DataConfig
    config: TrainingConfig
    rule: PromotionRule
    notes: list[str]  # how a folder source was read, for the console
    mlflow_tracking_uri: str  # the option, else the environment's; "" for none
    same_as: str  # the champion's run when this run starts with everything it started with; else ""


def checked_request(args: argparse.Namespace) -> Request:
    """Every input checked before any work, in the order a person fixes them: the options, the root and
    run name, the data source, the weights, the champion records, then what a resume would refuse."""
    from trainboard.artifacts.training_state import check_resume
    from trainboard.components.notify.core import check_webhook_setting
    from trainboard.sources import check_source, known_classes
    from trainboard.weights import check_available

    check_port(args.port)
    cluster_parallelism()  # the pipeline reads it as it loads (its cluster limit): refused here, not then
    check_webhook_setting()  # the notification at the end would only log it
    mlflow_tracking_uri = _mlflow_tracking_uri(args.mlflow_tracking_uri)
    config = _training_config(args)
    check_config(config)
    rule = PromotionRule(**field_values(PromotionRule, vars(args)))
    check_promotion_rule(rule)
    root = check_root(args.root, will_write=True)
    # Given, it is checked as given: '' (an unset shell variable) is refused, not a generated name.
    run_name = layout.new_run_name() if args.run_name is None else args.run_name
    check_sweep_run(run_name, config, args.parallelism)  # the run's name, its trials' and how many at once
    data = DataConfig(**field_values(DataConfig, vars(args)))
    check_data_config(data)
    notes = check_source(  # a tfds: source loads TensorFlow Datasets; a folder's classes meet the fractions
        data.dataset,
        data.tfds_data_dir,
        validation_fraction=data.validation_fraction,
        test_fraction=data.test_fraction,
    )
    check_available(config.weights, config.model, config.image_size, root)  # a file: Keras loads it
    _check_champion(root, run_name, rule)  # what evaluate and promote would refuse after training
    if args.restart and args.run_name is None:
        raise UsageError("restart", "needs --run-name: the run to start over")
    current = _started_with(config, data)
    if not args.restart:  # what the train task would refuse after data preparation, refused now
        resume = {"image": current["image"], "source_fingerprint": current["source_fingerprint"]}
        check_resume(root, run_name, config, data, **resume, classes=partial(known_classes, data.dataset))
    same_as = _same_as_champion(root, run_name, current)
    return Request(
        root=root,
        run=run_name,
        data=data,
        config=config,
        rule=rule,
        notes=notes,
        same_as=same_as,
        mlflow_tracking_uri=mlflow_tracking_uri,
    )


def _mlflow_tracking_uri(option: str) -> str:
    """The MLflow server the steps log to: the option, else MLFLOW_TRACKING_URI; an http(s) URL, else
    refused before any work (a typo would only be a warning once the run trained)."""
    if option:
        return check_http_url("mlflow_tracking_uri", option)
    uri = os.environ.get(TRACKING_URI_ENV, "")
    return check_http_url(TRACKING_URI_ENV, uri) if uri else ""


def _started_with(config: TrainingConfig, data: DataConfig) -> dict:
    """training_state.started_with of this run, but the prepared data's fingerprint (not known yet)."""
    from trainboard.artifacts.training_state import data_settings, started_with
    from trainboard.component_image import IMAGE
    from trainboard.components.fingerprint_source.core import fingerprint_source  # a listing, no image read

    fingerprint = fingerprint_source(data.dataset)
    return started_with(
        config, data.dataset, data=data_settings(data), image=IMAGE, source_fingerprint=fingerprint
    )


def _same_as_champion(root: str, run: str, current: dict) -> str:
    """The champion's run when it started with all that this run starts with (settings, seed, data, image):
    training is seeded, so this run makes the same model again and the gate keeps it out ("equal,
    not better"). "" when anything differs, or the champion's state is gone (gc) or unreadable."""
    from trainboard.artifacts.champion import read_champion
    from trainboard.artifacts.training_state import DamagedState, read_state

    record, _ = read_champion(root)  # readable: _check_champion checked it
    if record is None or record.run == run:
        return ""
    try:
        state = read_state(root, record.run)
    except DamagedState:
        return ""
    before = {k: v for k, v in (state.started_with if state else {}).items() if k != "dataset_fingerprint"}
    return record.run if before and all(current.get(k) == v for k, v in before.items()) else ""
