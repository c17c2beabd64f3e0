"""start_run: fix the run's name before anything is written, so every step files under it."""

from __future__ import annotations

from trainboard import layout
from trainboard.config import check_root, check_run_name


def start_run(root: str, run_name: str, job_id: str) -> str:
    """``run_name`` if given, else a time-sortable name made unique by the pipeline job id."""
    check_root(root)
    run = run_name or layout.new_run_name(job_id.replace("-", ""))
    check_run_name(run)
    return run
