"""What trainboard adds to Keras's own TensorBoard logs: the run's hyperparameters and a labelled grid of
training images, in the run's top folder (TensorBoard run ``<run>``), and notes where a phase begins or an
attempt resumed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

from trainboard.image_grid import label_grid


def write_run_summaries(
    log_dir: Path, run: str, hparams: dict, *, samples: tuple[np.ndarray, np.ndarray], class_names: list[str]
) -> None:
    """HParams (so runs compare in the HParams tab) and the sample grid, at step 0."""
    images, labels = samples
    grid = label_grid(images, [class_names[i] for i in labels])
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        hp.hparams(hparams, trial_id=run)
        tf.summary.image(
            "training_samples", grid[None], step=0, description="Training images as the model sees them"
        )
    writer.close()


def write_note(log_dir: Path, tag: str, text: str, step: int) -> None:
    """A text note at epoch ``step``: where a phase begins ("phase"), where an attempt resumed ("resume")."""
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        tf.summary.text(tag, text, step=step)
    writer.close()
