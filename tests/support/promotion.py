"""promote() in tests: stand-in model folders, test metrics of a chosen accuracy, and promote() in a fresh
process for tests that kill it mid-copy."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from trainboard import layout, storage
from trainboard.artifacts.evaluation import Evaluation
from trainboard.components.evaluate.metrics import compute_metrics

CLASSES = ["circle", "square", "triangle", "cross"]


def metrics_with_accuracy(accuracy: float) -> Evaluation:
    """Test metrics of 20 examples, ``accuracy`` of them right (the mistakes: circle taken for square)."""
    labels = np.arange(20) % 4
    right = round(accuracy * 20)
    predicted = np.where(np.arange(20) < right, labels, (labels + 1) % 4)
    return compute_metrics(labels, np.eye(4)[predicted], CLASSES)


def model_folder(tmp_path: Path, run: str) -> str:
    """A stand-in Model artifact: what promote copies, whatever the bytes."""
    out = tmp_path / f"model-{run}"
    (out / "saved_model").mkdir(parents=True, exist_ok=True)
    (out / "model.keras").write_text(f"weights of {run}")
    (out / "saved_model" / "saved_model.pb").write_text(f"graph of {run}")
    (out / "trainboard_model.json").write_text(json.dumps({"run": run}))
    return str(out)


def champion_folder_run(root: str) -> str:
    """Which run's model ``<root>/models/champion/`` holds (every file must agree)."""
    folder = layout.champion_model_dir(root)
    files = {uri[len(folder) + 1 :]: storage.read_bytes(uri).decode() for uri in storage.list_files(folder)}
    assert sorted(files) == [
        "model.keras",
        "saved_model/saved_model.pb",
        "trainboard_manifest.json",
        "trainboard_model.json",
    ]
    run = json.loads(files["trainboard_model.json"])["run"]
    assert json.loads(files["trainboard_manifest.json"])["run"] == run
    assert (
        files["model.keras"] == f"weights of {run}"
        and files["saved_model/saved_model.pb"] == f"graph of {run}"
    )
    return run


PROMOTE_SCRIPT = """
import sys
from pathlib import Path
from trainboard.components.promote.core import promote
from tests.support.promotion import metrics_with_accuracy, model_folder
from trainboard.config import PromotionRule
root, run, tmp, accuracy = sys.argv[1], sys.argv[2], Path(sys.argv[3]), float(sys.argv[4])
decision = promote(root, run, model_folder(tmp, run), metrics_with_accuracy(accuracy), rule=PromotionRule())
print(decision.promoted)
"""


def promote_command(root: str, run: str, tmp_path: Path, accuracy: float) -> list[str]:
    """promote() of a stand-in model in a fresh Python process (run from the repository root)."""
    return [sys.executable, "-c", PROMOTE_SCRIPT, root, run, str(tmp_path), str(accuracy)]
