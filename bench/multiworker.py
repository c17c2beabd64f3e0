"""Multi-worker training on this machine: what the coordination costs.

    .venv/bin/python bench/multiworker.py [--epochs 6] [--batch-size 64] [--image-size 32]

The demo data, small_cnn, the same global batch, trained as the train task trains it: in one process
(workers=1, core.train in a fresh process), and on two worker processes on loopback ports
(workers=2, components/train/local_workers.py). Reported per setup: the steady images/s promote plots
(trainboard.artifacts.model.steady_images_per_second: the epochs after the first) and the median epoch
training time, from state.json's history, and the wall time of the whole call (process start, TensorFlow
import and the strategy's set-up included). Two CPU workers share this machine's cores, so they cannot
be faster: the ratio is the price of the all-reduce of every step and of each worker's own process.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support

from tests.support.training import train_command
from tests.support.workers import workers_command
from trainboard.artifacts.model import read_model_info
from trainboard.artifacts.training_state import load_state
from trainboard.components.prepare_data.core import prepare_data
from trainboard.components.train.checkpoints import TRAIN_SECONDS
from trainboard.config import DataConfig, TrainingConfig


def measure(data: str, work: Path, config: TrainingConfig) -> dict:
    root, model = work / f"root-{config.workers}", work / f"model-{config.workers}"
    make = train_command if config.workers == 1 else workers_command
    command = make(data, model, str(root), "bench", asdict(config))
    started = time.monotonic()
    subprocess.run(command, check=True, capture_output=True, cwd=Path(__file__).resolve().parents[1])
    wall = time.monotonic() - started
    seconds = load_state(str(root), "bench").history[TRAIN_SECONDS]
    return {
        "images_per_second": read_model_info(model).images_per_second,
        "epoch_seconds": statistics.median(seconds[1:]),
        "wall_seconds": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-multiworker-") as work:
        work = Path(work)
        prepare_data(DataConfig("demo"), str(work / "data"))
        config = TrainingConfig(epochs=args.epochs, batch_size=args.batch_size, image_size=args.image_size)
        one = measure(str(work / "data"), work, config)
        two = measure(str(work / "data"), work, TrainingConfig(**{**asdict(config), "workers": 2}))
    print(
        f"small_cnn at {args.image_size}px, global batch {args.batch_size}, demo data, "
        f"{args.epochs} epochs, CPU:"
    )
    for name, key, unit in (
        ("images/s (steady)", "images_per_second", ""),
        ("epoch time, median", "epoch_seconds", " s"),
        ("wall time of the call", "wall_seconds", " s"),
    ):
        print(
            f"  {name:24} 1 worker {one[key]:8.2f}{unit}   2 workers {two[key]:8.2f}{unit}   "
            f"2 / 1 {two[key] / one[key]:.2f}"
        )


if __name__ == "__main__":
    main()
