"""`trainboard local`: the whole pipeline on this machine through kfp.local, then its TensorBoard."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields

from trainboard import layout
from trainboard.cli.output import progress
from trainboard.cli.tensorboard import DEFAULT_ROOT, serve
from trainboard.config import (
    DataConfig,
    PromotionRule,
    TrainingConfig,
    check_config,
    check_data_config,
    check_promotion_rule,
    check_root,
    check_run_name,
    field_values,
    model_spec,
)


def add(commands) -> None:
    p = commands.add_parser(
        "local",
        help="run the whole pipeline on this machine (kfp.local), then serve its TensorBoard",
        description="Run prepare_data -> train -> evaluate -> promote on this machine through kfp.local. "
        "TensorBoard logs stream to ROOT/tensorboard/RUN/ while training runs; at the end TensorBoard serves "
        "ROOT/tensorboard (every run side by side) on 127.0.0.1.",
    )
    for config in (DataConfig, TrainingConfig, PromotionRule):
        _add_config_options(p, config)
    p.add_argument(
        "--root",
        default=DEFAULT_ROOT,
        help="storage root: a local folder or gs://BUCKET/PREFIX (default: %(default)s)",
    )
    p.add_argument("--run-name", default="", help="name of this run (default: UTC time + random suffix)")
    p.add_argument(
        "--serve",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="serve TensorBoard when the run ends (default: serve)",
    )
    p.add_argument(
        "--port", type=int, default=6006, help="TensorBoard port, or the next free one (default: 6006)"
    )
    p.add_argument(
        "--json", action="store_true", help="progress to stderr; last line of stdout is the result as JSON"
    )
    p.set_defaults(handler=run)


def _add_config_options(p: argparse.ArgumentParser, config: type) -> None:
    """One option per field of the dataclass ``config``, with its type, default, choices and help."""
    for option in fields(config):
        flag = "--" + option.name.replace("_", "-")
        help = option.metadata["help"]
        if option.name == "image_size":  # the model's own unless given
            p.add_argument(flag, type=int, default=None, help=help + " (default: the model's own)")
        elif option.type == "bool":
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=option.default, help=help)
        else:
            kind = {"int": int, "float": float, "str": str}[option.type]
            choices = option.metadata["choices"] or None
            p.add_argument(
                flag, type=kind, default=option.default, choices=choices, help=help + _shown(option.default)
            )


def _shown(default: object) -> str:
    """The default as the help shows it: none where it is empty (the help says what empty means), a
    float as a person writes it (10, not 10.0; 0.003 and 1e-05 as they are)."""
    if default == "":
        return ""
    text = f"{default:g}" if isinstance(default, float) else str(default)
    return f" (default: {text})".replace("%", "%%")


def _training_config(args: argparse.Namespace) -> TrainingConfig:
    values = field_values(TrainingConfig, vars(args))
    if values["image_size"] is None:
        values["image_size"] = model_spec(values["model"]).default_image_size
    return TrainingConfig(**values)


def run(args: argparse.Namespace) -> int:
    from trainboard.sources import check_source
    from trainboard.weights import check_available

    config = _training_config(args)
    check_config(config)
    rule = PromotionRule(**field_values(PromotionRule, vars(args)))
    check_promotion_rule(rule)
    root = check_root(args.root, must_exist=True)
    run_name = args.run_name or layout.new_run_name()
    check_run_name(run_name)
    data = DataConfig(**field_values(DataConfig, vars(args)))
    check_data_config(data)
    notes = check_source(data.dataset, data.tfds_data_dir)  # a tfds: source loads TensorFlow Datasets
    check_available(config.weights, config.model, config.image_size, root)  # a file: Keras loads it

    from trainboard.local_run import run_local

    tensorboard_root = layout.tensorboard_root(root)
    for note in notes:  # also in the dataset card
        progress(f"trainboard: {data.dataset}: {note}")
    progress(
        f"trainboard: run {run_name}: TensorBoard logs stream to {layout.tensorboard_dir(root, run_name)}"
    )
    progress(f"trainboard: watch it live: trainboard tensorboard --logdir {tensorboard_root}")
    result = run_local(root, run_name, data, config, rule, quiet_stdout=args.json)
    progress(
        f"trainboard: run {run_name} finished: test accuracy {result.metrics['test_accuracy']:.3f}, "
        f"test loss {result.metrics['test_loss']:.3f}; model at {result.model_uri}"
    )
    promotion = "promoted: it is the champion" if result.promoted else "not promoted"
    progress(f"trainboard: run {run_name} {promotion}; champion: {result.champion or 'none'}")
    if args.json:
        print(json.dumps(result.as_json()), flush=True)
    if args.serve:
        serve(tensorboard_root, args.port, run_name)
    return 0
