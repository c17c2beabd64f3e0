"""plan_trials: the night's trials (trainboard/sweep.py) as the train task's ParallelFor items: one trial,
the run itself, without a sweep; <run>-t1, <run>-t2, ... with one. start_run has checked the sweep."""

from __future__ import annotations

from trainboard.sweep import trials


def plan(run: str, sweep: str) -> list[str]:
    """Each trial as a string (Trial.to_json): its run, its overrides, its siblings."""
    return [trial.to_json() for trial in trials(run, sweep)]
