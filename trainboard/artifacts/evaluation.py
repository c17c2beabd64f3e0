"""The evaluation: evaluate's test-split metrics, the file promote decides on. numpy only (no TensorFlow):
promote reads it on a light image.

    <evaluation artifact>   JSON of Evaluation (to_json / from_json; write_evaluation / read_evaluation)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

TOP_K = 5  # top5_accuracy is reported with more than TOP_K classes


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
    """The champion's test accuracy, and F1 per class (in the evaluation's class order), measured on this
    run's test split."""

    run: str
    accuracy: float
    f1: list[float] = field(default_factory=list)  # empty in an evaluation written before it was measured
    # The paired comparison on the same examples (McNemar's test): how many this run got right and the
    # champion wrong, and the other way round; None in an evaluation written before it was counted.
    only_this_right: int | None = None
    only_champion_right: int | None = None


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

    @property
    def chance_accuracy(self) -> float:
        """What a model that knows nothing gets on this test split: the better of guessing (1 / classes)
        and always answering its most frequent class."""
        supports = np.sum(self.confusion_matrix, axis=1)
        return max(1 / len(self.class_names), float(np.max(supports)) / max(1, self.examples))

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


def write_evaluation(path: str | Path, evaluation: Evaluation) -> None:
    Path(path).write_text(json.dumps(evaluation.to_json()))


def read_evaluation(path: str | Path) -> Evaluation:
    return Evaluation.from_json(json.loads(Path(path).read_text()))
