"""train() in tests: a configuration that trains in seconds, and the core in a fresh process for tests
that kill it or run several at once."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from trainboard.config import TrainingConfig

# Tiny models that train in seconds on the demo data.
FAST = TrainingConfig(model="small_cnn", epochs=2, batch_size=64, image_size=16, sync_seconds=0.5)

TRAIN_SCRIPT = """
import sys, json
from trainboard.components.train.core import train
from trainboard.config import TrainingConfig
train(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], config=TrainingConfig(**json.loads(sys.argv[5])))
"""


def train_command(dataset: str, model_dir: Path, root: str, run: str, config: dict) -> list[str]:
    """train() in a fresh Python process, for tests that kill it or run several at once."""
    return [sys.executable, "-c", TRAIN_SCRIPT, dataset, str(model_dir), root, run, json.dumps(config)]
