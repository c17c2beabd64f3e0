"""One attempt of a training run (the first, or a retry or restart that resumes it): what its steps in
components/train/core.py and phases.py read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from trainboard import layout
from trainboard.artifacts.dataset import DatasetInfo
from trainboard.config import TrainingConfig


@dataclass(frozen=True)
class Attempt:
    """What the steps of this attempt of a run read: its settings and data, where it reads the run's
    records (``root``) and where this worker writes (``out_root``: the root for the chief, a throwaway
    copy for the others), its scratch folder and how it trains."""

    config: TrainingConfig
    dataset_dir: str
    info: DatasetInfo
    root: str
    out_root: str
    run: str
    scratch: Path
    strategy: tf.distribute.Strategy
    steps_per_epoch: int
    chief: bool

    @property
    def logs(self) -> Path:
        """Where Keras and trainboard write the TensorBoard logs (streamed to tensorboard_dir)."""
        return self.scratch / "logs"

    @property
    def tensorboard_dir(self) -> str:
        return layout.tensorboard_dir(self.out_root, self.run)

    @property
    def classes(self) -> int:
        return len(self.info.class_names)
