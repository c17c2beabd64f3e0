"""The evaluation in TensorBoard: the test metrics as scalars and the confusion matrix as an image, in
``<root>/tensorboard/<run>/evaluation/`` (TensorBoard run ``<run>/evaluation``, beside the curves)."""

from __future__ import annotations

import tempfile

import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw

from trainboard import storage
from trainboard.artifacts.evaluation import Evaluation

EVALUATION = "evaluation"
_LABEL_CHARS = 16
_LABEL_SPACE = 6 * _LABEL_CHARS + 8  # the default PIL font is 6 px a character
_DRAWN_AREA = 800  # cells shrink with many classes so the image stays about this wide


def confusion_matrix_image(matrix: list[list[int]], class_names: list[str]) -> np.ndarray:
    """uint8 HxWx3: rows true classes, columns predicted, shaded by the share of the row (recall per
    cell), counts written in the cells when they fit, class names on both axes."""
    counts = np.asarray(matrix)
    classes = len(class_names)
    cell = int(np.clip(_DRAWN_AREA // classes, 6, 40))
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = (_LABEL_SPACE + classes * cell, _LABEL_SPACE + classes * cell)
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.text((2, 2), "rows: true", fill="black")
    draw.text((2, 14), "columns: predicted", fill="black")
    for row, name in enumerate(class_names):
        y = _LABEL_SPACE + row * cell
        if cell >= 10:
            draw.text((2, y + (cell - 11) // 2), name[:_LABEL_CHARS], fill="black")
            header = Image.new("RGB", (_LABEL_SPACE, cell), "white")
            ImageDraw.Draw(header).text((2, (cell - 11) // 2), name[:_LABEL_CHARS], fill="black")
            image.paste(header.rotate(90, expand=True), (y, 0))  # the column of the same class
        for column in range(classes):
            x = _LABEL_SPACE + column * cell
            shade = int(255 - 200 * shares[row, column])
            draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=(shade, shade, 255), outline="lightgray")
            if cell >= 24 and counts[row, column]:
                text = "white" if shares[row, column] > 0.5 else "black"
                draw.text((x + 3, y + (cell - 11) // 2), str(counts[row, column]), fill=text)
    return np.asarray(image)


def write_evaluation_logs(run_dir: str, metrics: Evaluation, step: int) -> str:
    """Write the event file locally, then upload it whole to ``run_dir/evaluation`` (replacing what an
    earlier attempt of the task left there, so a retry adds no second point); return that folder."""
    target = storage.join(run_dir, EVALUATION)
    with tempfile.TemporaryDirectory(prefix="trainboard-evaluation-") as scratch:
        writer = tf.summary.create_file_writer(scratch)
        with writer.as_default():
            for name, value in metrics.headline().items():
                tf.summary.scalar(name, value, step=step)
            for scores in metrics.per_class:
                for what in ("precision", "recall", "f1"):
                    tf.summary.scalar(f"test_{what}/{scores.name}", getattr(scores, what), step=step)
            tf.summary.image(
                "confusion_matrix",
                confusion_matrix_image(metrics.confusion_matrix, metrics.class_names)[None],
                step=step,
                description="Test split: rows are true classes, columns predicted ones",
            )
        writer.close()
        for stale in storage.list_files(target):
            storage.delete(stale)
        storage.upload_dir(scratch, target)
    return target
