"""Run the whole pipeline on this machine through kfp.local (one subprocess per task, no per-task venv)."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from trainboard import layout, storage
from trainboard.config import DataConfig, PromotionRule, TrainingConfig


@dataclass
class LocalRunResult:
    run: str
    root: str
    logdir: str
    metrics: dict[str, float]
    model_uri: str
    promoted: bool
    champion: str

    def as_json(self) -> dict:
        return {
            "run": self.run,
            "root": self.root,
            "logdir": self.logdir,
            "tensorboard_logdir": layout.tensorboard_root(self.root),
            "metrics": self.metrics,
            "model_uri": self.model_uri,
            "promoted": self.promoted,
            "champion": self.champion,
        }


def default_pipeline_root(root: str) -> str:
    """Where kfp.local keeps task artifacts: beside the root when it is local (kfp.local cannot
    write artifacts to gs://), else in the working directory."""
    base = Path.cwd() / ".trainboard" if storage.is_gcs(root) else Path(root)
    return str(base / "pipeline-root")


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send everything written to fd 1 (task subprocesses included) to stderr, keeping stdout for JSON."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def run_local(
    root: str,
    run: str,
    data: DataConfig,
    config: TrainingConfig,
    rule: PromotionRule,
    pipeline_root: str | None = None,
    quiet_stdout: bool = False,
) -> LocalRunResult:
    """Run the pipeline with kfp.local; inputs are assumed checked (trainboard.config)."""
    from kfp import local

    from pipelines.training_pipeline import training_pipeline

    # The component image is for the cluster; here the tasks run this installed package on purpose.
    warnings.filterwarnings("ignore", message=".*non-Python base image", category=RuntimeWarning)
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=pipeline_root or default_pipeline_root(root),
    )
    with _stdout_to_stderr() if quiet_stdout else contextlib.nullcontext():
        # No accelerator asked for: this machine's TensorFlow uses a GPU it has without one.
        task = training_pipeline(
            root=root, run_name=run, accelerator_count="0", **asdict(data), **asdict(config), **asdict(rule)
        )
    metrics = task.outputs["metrics"].metadata
    return LocalRunResult(
        run=task.outputs["run"],
        root=root,
        logdir=layout.tensorboard_dir(root, run),
        metrics={k: float(metrics[k]) for k in ("test_accuracy", "test_loss")},
        model_uri=task.outputs["model"].uri,
        promoted=task.outputs["promoted"],
        champion=task.outputs["champion"],
    )
