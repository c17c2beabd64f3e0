"""Test-split metrics from labels and predicted probabilities: numpy only, so the math is checked on a
hand-computed example and the promote step reads the result without TensorFlow."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

TOP_K = 5
_EPSILON = 1e-7  # Keras's clip for log(0) in cross-entropy, so the loss matches model.evaluate


@dataclass
class ClassScores:
    name: str
    precision: float  # 0 when the class was never predicted (nothing predicted, nothing right)
    recall: float
    f1: float
    support: int  # test examples of the class


@dataclass
class Averages:
    precision: float
    recall: float
    f1: float


@dataclass
class RescoredChampion:
    """The champion's test accuracy measured on this run's test split."""

    run: str
    accuracy: float


@dataclass
class Evaluation:
    loss: float  # mean categorical cross-entropy
    accuracy: float
    top5_accuracy: float | None  # None with TOP_K classes or fewer: it would always be 1
    class_names: list[str]
    confusion_matrix: list[list[int]]  # rows: true class, columns: predicted class
    per_class: list[ClassScores]
    macro: Averages  # every class counts the same
    weighted: Averages  # every class counts by its support
    # The champion measured on the same test split, so the gate compares like with like even where the
    # data changed since the champion was promoted; None without a comparable champion.
    champion_rescored: RescoredChampion | None = None

    @property
    def examples(self) -> int:
        return int(np.sum(self.confusion_matrix))

    def headline(self) -> dict[str, float]:
        """The numbers the KFP UI lists and TensorBoard plots, by name."""
        numbers = {
            "test_loss": self.loss,
            "test_accuracy": self.accuracy,
            "test_top5_accuracy": self.top5_accuracy,
            **{f"test_macro_{k}": v for k, v in asdict(self.macro).items()},
            **{f"test_weighted_{k}": v for k, v in asdict(self.weighted).items()},
        }
        return {name: value for name, value in numbers.items() if value is not None}

    def worst_confusions(self, count: int = 5) -> list[tuple[str, str, int]]:
        """(true class, predicted class, examples) of the most frequent mistakes, most first."""
        matrix = np.array(self.confusion_matrix)
        np.fill_diagonal(matrix, 0)
        pairs = [(int(matrix[t, p]), t, p) for t, p in zip(*np.nonzero(matrix), strict=True)]
        pairs.sort(key=lambda pair: (-pair[0], pair[1], pair[2]))
        return [(self.class_names[t], self.class_names[p], n) for n, t, p in pairs[:count]]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Evaluation:
        return cls(
            **{
                **data,
                "per_class": [ClassScores(**c) for c in data["per_class"]],
                "macro": Averages(**data["macro"]),
                "weighted": Averages(**data["weighted"]),
                "champion_rescored": RescoredChampion(**data["champion_rescored"])
                if data.get("champion_rescored")
                else None,
            }
        )


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
