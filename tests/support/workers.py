"""The train task's local hand-off (components/train/local_workers.py) in a fresh Python process, as the
train task runs it: for tests that kill one of its workers, and the multi-worker benchmark."""

from __future__ import annotations

import json
import sys
from pathlib import Path

WORKERS_SCRIPT = """
import json, sys
from trainboard.components.train.local_workers import train_on_local_workers
from trainboard.config import TrainingConfig
train_on_local_workers(*sys.argv[1:5], config=TrainingConfig(**json.loads(sys.argv[5])))
"""


def workers_command(dataset: str, model_dir: Path, root: str, run: str, config: dict) -> list[str]:
    """train_on_local_workers() in a fresh process (``config``: TrainingConfig's fields)."""
    return [sys.executable, "-c", WORKERS_SCRIPT, dataset, str(model_dir), root, run, json.dumps(config)]
