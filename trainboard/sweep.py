"""The nightly tournament's trials: the ``sweep`` parameter parsed into a grid of overrides of the declared
training parameters, each trial checked as a single run's parameters are, and named after the night's run.

``learning_rate=0.001,0.003;model=small_cnn,mobilenet_v3_small`` is four trials: every combination of
the listed values (a grid), each a TrainingConfig with those fields replaced. An empty sweep is one
trial, the run itself with the settings as given: a night without a sweep is a night as before.

TensorFlow-free: the CLI and start_run check a sweep before anything is written or started.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, fields, replace
from typing import Any

from trainboard.checks import check_run_name
from trainboard.config import Bounds, TrainingConfig
from trainboard.errors import UsageError

# At most this many trials a night. Each is a GPU job for the whole night and a run on the team board;
# a grid multiplies (three names of four values are 64 trials), so a bound this low catches the grid
# nobody meant, keeps the board's run list and the report's table readable, and keeps the night a night
# at a parallelism of 4 (four rounds). A wider search is a search service's job (Katib), not a nightly run's.
MAX_TRIALS = 16
# Trials training at once: `trainboard local --parallelism` here; on a cluster the compiled pipeline's
# ParallelFor limit, a GPU each: KFP takes it when the pipeline is compiled (kfp/dsl/tasks_group.py,
# 2.17.3: an int, not a pipeline parameter), from TRAINBOARD_SWEEP_PARALLELISM (default 4) as the image
# comes from TRAINBOARD_IMAGE.
PARALLELISM = Bounds(above=0, at_most=MAX_TRIALS, note="trials training at once")
PARALLELISM_ENV = "TRAINBOARD_SWEEP_PARALLELISM"
CLUSTER_PARALLELISM = 4
# What a trial may not set: the sweep itself, and settings a trial must share with its siblings to race
# them (the same epochs: the same points of training compared).
NOT_SWEPT = ("sweep", "epochs")
FIELD = "sweep"


@dataclass(frozen=True)
class Trial:
    run: str  # the trial's own run name: the night's run, or <run>-t<number> in a sweep
    overrides: dict[str, Any]  # the fields this trial sets, in the sweep's order
    siblings: tuple[str, ...]  # the other trials' runs, which it races

    def to_json(self) -> str:
        """The trial as the train task takes it (one ParallelFor item, a string)."""
        return json.dumps({"run": self.run, "overrides": self.overrides, "siblings": list(self.siblings)})

    @classmethod
    def from_json(cls, text: str) -> Trial:
        data = json.loads(text)
        return cls(data["run"], dict(data["overrides"]), tuple(data["siblings"]))

    def settings(self) -> str:
        return settings_of(self.overrides)


def settings_of(overrides: dict[str, Any]) -> str:
    """Overrides as the sweep writes them: ``learning_rate=0.003 model=small_cnn``."""
    return " ".join(f"{name}={value}" for name, value in overrides.items()) or "as given"


def _value(name: str, text: str, kind: str) -> Any:
    """``text`` as field ``name``'s type (``kind``, the dataclass's annotation)."""
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
    except ValueError:
        raise UsageError(
            FIELD, f"{name}={text!r} is not a{'n integer' if kind == 'int' else ' number'}"
        ) from None
    if kind == "bool":
        if text.lower() not in ("true", "false"):
            raise UsageError(FIELD, f"{name}={text!r}: use true or false")
        return text.lower() == "true"
    return text


def parse_sweep(sweep: str) -> list[dict[str, Any]]:
    """The overrides of each trial, the grid of ``sweep`` (NAME=V1,V2;NAME=V3...) in order: the first
    name varies slowest. [{}] for an empty sweep. UsageError naming ``sweep`` for a name that is not a
    training parameter (or one a trial may not set), a value not of its type, a value given twice, or
    more than MAX_TRIALS trials."""
    if not sweep.strip():
        return [{}]
    kinds = {f.name: str(f.type) for f in fields(TrainingConfig)}
    axes: dict[str, list[Any]] = {}
    for part in filter(None, (p.strip() for p in sweep.split(";"))):
        name, equals, values = (s.strip() for s in part.partition("="))
        if not equals or not values:
            raise UsageError(FIELD, f"{part!r} is not NAME=VALUE[,VALUE...] (e.g. learning_rate=0.001,0.003)")
        if name not in kinds or name in NOT_SWEPT:
            allowed = ", ".join(n for n in kinds if n not in NOT_SWEPT)
            raise UsageError(FIELD, f"{name!r} is not a parameter a trial may set; use one of: {allowed}")
        if name in axes:
            raise UsageError(FIELD, f"{name} is given twice; list its values once, separated by commas")
        parsed = [_value(name, v.strip(), kinds[name]) for v in values.split(",")]
        if len(set(parsed)) < len(parsed):
            raise UsageError(FIELD, f"{name} lists a value twice ({values}): two trials would be the same")
        axes[name] = parsed
    count = math.prod(len(values) for values in axes.values())
    if count > MAX_TRIALS:
        raise UsageError(FIELD, f"{count} trials (the grid of every value); at most {MAX_TRIALS} a night")
    return [dict(zip(axes, combination, strict=True)) for combination in itertools.product(*axes.values())]


def trial_config(config: TrainingConfig, overrides: dict[str, Any]) -> TrainingConfig:
    """The trial's settings: ``config`` with its overrides, and no sweep of its own."""
    return replace(config, **overrides, sweep="")


def trials(run: str, sweep: str) -> list[Trial]:
    """The night's trials of ``sweep`` (each trial's settings checked by config_checks.check_config):
    without a sweep the run itself; with one, <run>-t1, <run>-t2, ... (each run name checked: a long
    night's name leaves no room for the suffix)."""
    overrides = parse_sweep(sweep)
    if overrides == [{}]:
        return [Trial(run, {}, ())]
    runs = [f"{run}-t{number}" for number in range(1, len(overrides) + 1)]
    for name in runs:
        check_run_name(name)
    return [
        Trial(name, each, tuple(r for r in runs if r != name))
        for name, each in zip(runs, overrides, strict=True)
    ]
