"""evaluate: the trained model on the test split: loss, accuracy and a confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainboard.components.train.core import load_trained
from trainboard.dataset_artifact import load_split, read_info


@dataclass
class Evaluation:
    test_loss: float
    test_accuracy: float
    class_names: list[str]
    confusion_matrix: list[list[int]]  # rows: true class, columns: predicted class


def evaluate(dataset_dir: str, model_dir: str, batch_size: int = 64) -> Evaluation:
    model, model_info = load_trained(model_dir)
    info = read_info(dataset_dir)
    if info.class_names != model_info.class_names:
        raise ValueError(
            f"model classes {model_info.class_names} do not match the dataset's {info.class_names}"
        )
    n = len(info.class_names)
    matrix = np.zeros((n, n), dtype=np.int64)
    loss_sum, count = 0.0, 0
    for images, labels in load_split(dataset_dir, "test", model_info.image_size, batch_size):
        probs = model.predict_on_batch(images)
        labels = labels.numpy()
        picked = np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0)
        loss_sum += float(-np.log(picked).sum())
        count += len(labels)
        np.add.at(matrix, (labels, probs.argmax(axis=1)), 1)
    if count == 0:
        raise ValueError(f"{dataset_dir}: the test split is empty")
    return Evaluation(
        test_loss=loss_sum / count,
        test_accuracy=float(np.trace(matrix) / count),
        class_names=list(info.class_names),
        confusion_matrix=matrix.tolist(),
    )
