"""The evaluation in TensorBoard: the headline test metrics as scalars, the per-class precision, recall and
F1 as one table (a text summary: one card, not three scalar charts per class), and the confusion matrix as
one image, in ``<root>/tensorboard/<run>/evaluation/`` (TensorBoard run ``<run>/evaluation``, beside the
curves). Both hold at caltech101's 102 classes: the matrix is normalised per row with a colour scale and
names that fit, and lists the most confused pairs beside it, large."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw

from trainboard import layout, markdown, storage
from trainboard.artifacts.evaluation import Evaluation
from trainboard.charts import colour, colour_bar, fitted, font, text_colour

PER_CLASS_TAG = "test_per_class"
_MATRIX_AREA = 1200  # px the matrix aims at: 102 classes get 12 px cells, the demo's 4 get 40
_CELL_RANGE = (12, 40)
_LABEL_SPACE = 150  # px at most for a class name, beside the rows and above the columns
_TITLE = 44
_PAIRS = 20  # most confused pairs listed beside the matrix
_PAIRS_WIDTH = 430


@dataclass(frozen=True)
class MatrixLayout:
    """Where the matrix is drawn: ``classes`` x ``classes`` cells of ``cell`` px from (left, top), the
    names at ``font_size`` px in ``labels`` px beside the rows and above the columns."""

    classes: int
    cell: int
    font_size: int
    labels: int

    @classmethod
    def of(cls, class_names: list[str]) -> MatrixLayout:
        cell = int(np.clip(_MATRIX_AREA // len(class_names), *_CELL_RANGE))
        size = int(np.clip(cell - 2, 9, 13))  # a name is as tall as its cell
        longest = max(font(size).getlength(name) for name in class_names)
        return cls(len(class_names), cell, size, int(min(longest, _LABEL_SPACE)) + 8)

    @property
    def left(self) -> int:
        return self.labels + 6

    @property
    def top(self) -> int:
        return _TITLE + self.labels + 6

    def cell_box(self, row: int, column: int) -> tuple[int, int, int, int]:
        x, y = self.left + column * self.cell, self.top + row * self.cell
        return x, y, x + self.cell - 1, y + self.cell - 1

    @property
    def right(self) -> int:
        return self.left + self.classes * self.cell

    @property
    def bottom(self) -> int:
        return self.top + self.classes * self.cell


def confusion_matrix_image(matrix: list[list[int]], class_names: list[str]) -> np.ndarray:
    """uint8 HxWx3: rows true classes, columns predicted, each cell coloured by its share of the row (the
    diagonal is each class's recall) on a colour scale, counts in the cells when they fit, class names on
    both axes at a size that fits the cells, and the most confused pairs listed large beside it."""
    counts = np.asarray(matrix)
    layout = MatrixLayout.of(class_names)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    pairs = _most_confused(counts)
    bar_x = layout.right + 16
    pairs_x = bar_x + 70
    height = max(layout.bottom, layout.top + 40 + 22 * len(pairs)) + 8
    image = Image.new("RGB", (max(pairs_x + _PAIRS_WIDTH, 620), height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((6, 4), f"Confusion matrix, test split ({counts.sum()} examples)", fill="black", font=font(15))
    draw.text(
        (6, 24),
        "rows: true class, columns: predicted; colour: share of the row (the diagonal is recall)",
        fill="black",
        font=font(12),
    )
    size, width = layout.font_size, layout.labels - 8
    columns = Image.new("RGB", (layout.labels, layout.classes * layout.cell), "white")
    column_draw = ImageDraw.Draw(columns)
    for row, name in enumerate(class_names):
        middle = row * layout.cell + layout.cell // 2
        name = fitted(name, size, width)
        draw.text((layout.left - 4, layout.top + middle), name, "black", font(size), "rm")
        column_draw.text((4, middle), name, "black", font(size), "lm")
        for column in range(layout.classes):
            share = shares[row, column]
            draw.rectangle(layout.cell_box(row, column), fill=colour(share), outline=(232, 232, 232))
            if layout.cell >= 24 and counts[row, column]:
                x0, y0, _, _ = layout.cell_box(row, column)
                draw.text(
                    (x0 + layout.cell // 2, y0 + layout.cell // 2),
                    str(counts[row, column]),
                    fill=text_colour(share),
                    font=font(11),
                    anchor="mm",
                )
    image.paste(columns.rotate(90, expand=True), (layout.left, _TITLE))  # names read upwards from the matrix
    colour_bar(
        draw,
        bar_x,
        layout.top + 20,
        height=max(min(layout.bottom - layout.top, 320) - 20, 120),
        label="share of row",
    )
    # The most frequent mistakes, with their share of the true class: a large matrix's pale cells, large.
    draw.text((pairs_x, layout.top), "Most confused (true -> predicted)", fill="black", font=font(16))
    for n, (true, predicted) in enumerate(pairs):
        line = (
            f"{class_names[true]} -> {class_names[predicted]}: {counts[true, predicted]} "
            f"({shares[true, predicted]:.0%})"
        )
        draw.text((pairs_x, layout.top + 30 + 22 * n), fitted(line, 14, _PAIRS_WIDTH - 10), "black", font(14))
    if not pairs:
        draw.text((pairs_x, layout.top + 30), "none: every test image is right", "black", font(14))
    return np.asarray(image)


def _most_confused(counts: np.ndarray) -> list[tuple[int, int]]:
    """(true, predicted) of the _PAIRS most frequent mistakes, most first (ties in the matrix's order)."""
    off = counts.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:_PAIRS]
    return [divmod(int(i), len(counts)) for i in order if off.flat[i]]


def per_class_table(metrics: Evaluation) -> str:
    """The per-class scores as one Markdown table, the worst F1 first (where to look), names escaped."""
    rows = sorted(metrics.per_class, key=lambda c: (c.f1, c.name))
    return "\n".join(
        [
            f"Test split, {len(rows)} classes, worst F1 first.",
            "",
            "| class | precision | recall | F1 | support |",
            "|---|---|---|---|---|",
            *(
                f"| {markdown.escape(c.name)} | {c.precision:.3f} | {c.recall:.3f} | {c.f1:.3f} "
                f"| {c.support} |"
                for c in rows
            ),
        ]
    )


def write_evaluation_logs(run_dir: str, metrics: Evaluation, step: int) -> str:
    """Write the event file locally, then upload it whole to ``run_dir/evaluation`` (replacing what an
    earlier attempt of the task left there, so a retry adds no second point); return that folder."""
    target = storage.join(run_dir, layout.EVALUATION)
    with tempfile.TemporaryDirectory(prefix="trainboard-evaluation-") as scratch:
        writer = tf.summary.create_file_writer(scratch)
        with writer.as_default():
            for name, value in metrics.headline().items():
                tf.summary.scalar(name, value, step=step)
            tf.summary.text(PER_CLASS_TAG, per_class_table(metrics), step=step)
            tf.summary.image(
                "confusion_matrix",
                confusion_matrix_image(metrics.confusion_matrix, metrics.class_names)[None],
                step=step,
                description="Test split: rows are true classes, columns predicted ones",
            )
        writer.close()
        storage.delete_folder(target)
        storage.upload_dir(scratch, target)
    return target
