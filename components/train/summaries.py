"""What trainboard adds to Keras's own TensorBoard logs: the run's hyperparameters and a labelled grid of
training images, in the run's top folder (TensorBoard run ``<run>``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw
from tensorboard.plugins.hparams import api as hp

_TILE = 96  # pixels per sample in the grid, whatever the training size, so labels stay readable
_LABEL_HEIGHT = 14


def label_grid(images: np.ndarray, labels: list[str], columns: int = 4) -> np.ndarray:
    """uint8 HxWx3 grid of ``images`` (NxHxWx3, [0, 255]) with each label written under its image."""
    rows = -(-len(images) // columns)
    grid = Image.new("RGB", (columns * _TILE, rows * (_TILE + _LABEL_HEIGHT)), "white")
    draw = ImageDraw.Draw(grid)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        x, y = (i % columns) * _TILE, (i // columns) * (_TILE + _LABEL_HEIGHT)
        tile = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).resize((_TILE, _TILE), Image.NEAREST)
        grid.paste(tile, (x, y))
        draw.text((x + 2, y + _TILE + 1), label[:16], fill="black")
    return np.asarray(grid)


def write_run_summaries(
    log_dir: Path, run: str, hparams: dict, samples: tuple[np.ndarray, np.ndarray], class_names: list[str]
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
