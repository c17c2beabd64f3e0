"""Test-split metrics from labels and predicted probabilities: numpy only, so the math is checked on a
hand-computed example."""

from __future__ import annotations

import numpy as np

from trainboard.artifacts.evaluation import TOP_K, Averages, ClassScores, Evaluation

_EPSILON = 1e-7  # Keras's clip for log(0) in cross-entropy, so the loss matches model.evaluate


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0."""
    return np.divide(numerator, denominator, out=np.zeros(len(numerator)), where=denominator > 0)


def compute_metrics(labels: np.ndarray, probabilities: np.ndarray, class_names: list[str]) -> Evaluation:
    """Metrics of predictions ``probabilities`` (N x classes) against integer ``labels`` (N)."""
    labels = np.asarray(labels, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    classes = len(class_names)
    if len(labels) == 0:
        raise ValueError("the test split is empty: there is nothing to evaluate")
    if probabilities.shape != (len(labels), classes):
        raise ValueError(
            f"predictions of shape {probabilities.shape} for {len(labels)} labels of {classes} classes"
        )
    predicted = probabilities.argmax(axis=1)
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)

    true_positives = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1)
    precision = _ratio(true_positives, matrix.sum(axis=0))
    recall = _ratio(true_positives, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    weights = support / support.sum()

    picked = np.clip(probabilities[np.arange(len(labels)), labels], _EPSILON, 1.0)
    top5 = None
    if classes > TOP_K:
        best = np.argsort(-probabilities, axis=1, kind="stable")[:, :TOP_K]
        top5 = float(np.mean((best == labels[:, None]).any(axis=1)))
    return Evaluation(
        loss=float(-np.log(picked).mean()),
        accuracy=float(true_positives.sum() / len(labels)),
        top5_accuracy=top5,
        class_names=list(class_names),
        confusion_matrix=matrix.tolist(),
        per_class=[
            ClassScores(name, float(p), float(r), float(f), int(s))
            for name, p, r, f, s in zip(class_names, precision, recall, f1, support, strict=True)
        ],
        macro=Averages(float(precision.mean()), float(recall.mean()), float(f1.mean())),
        weighted=Averages(float(precision @ weights), float(recall @ weights), float(f1 @ weights)),
    )
