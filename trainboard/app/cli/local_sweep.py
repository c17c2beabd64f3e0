"""What `trainboard local` adds for a sweep (the --sweep option itself is TrainingConfig's): how many
trials train at once here, the trials' run names checked before any work, and the table of trials at
the end."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from trainboard.app.cli.output import progress
from trainboard.checks import check_run_name
from trainboard.config import TrainingConfig
from trainboard.config_checks import check_bounds
from trainboard.sweep import PARALLELISM, trials

if TYPE_CHECKING:
    from trainboard.app.local_run import LocalRunResult


def add_parallelism_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--parallelism",
        type=int,
        default=1,
        help="with --sweep: trials that train at once on this machine, each a process sharing its cores "
        "(on a cluster the compiled pipeline's limit: a GPU each) (default: 1: one after the other, so that "
        "a later trial races the earlier ones' whole curves)",
    )


def check_sweep_run(run: str, config: TrainingConfig, parallelism: int) -> None:
    """The run's name and its trials' (<run>-t<N>: a long run name leaves no room), and the parallelism;
    the trials' settings are check_config's."""
    check_run_name(run)
    trials(run, config.sweep)
    check_bounds("parallelism", parallelism, PARALLELISM)


def report_tournament(result: LocalRunResult) -> None:
    """With a sweep: which trial was judged, and where the table of trials is."""
    if not result.trials:
        return
    progress(
        f"trainboard: tournament of {len(result.trials)} trials: {result.chosen} chosen on validation "
        "accuracy, the only one evaluated on the test split and gated"
    )
    progress(f"trainboard: table of trials: {result.tournament}")
