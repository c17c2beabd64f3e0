"""One worker of a multi-worker train, in its own process: a TrainJob's pod or a process `trainboard
local` starts (components/train/local_workers.py). Its TF_CONFIG comes from cluster_spec.tf_config (the
worker count, JOB_COMPLETION_INDEX, where the workers are); then it trains as core.train does.

    python -m trainboard.components.train.worker DATASET_DIR MODEL_DIR ROOT RUN CONFIG_JSON [GPUS]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from trainboard import storage
from trainboard.components.train.cluster_spec import tf_config, worker_index
from trainboard.config import TrainingConfig


def main(argv: list[str]) -> None:
    """DATASET_DIR and MODEL_DIR may be gs:// URIs (a TrainJob's pod): the dataset is read from a local
    copy, and the chief uploads the model it saved."""
    dataset_dir, model_dir, root, run, config_json, *gpus = argv
    config = TrainingConfig(**json.loads(config_json))
    os.environ["TF_CONFIG"] = tf_config(config.workers, os.environ)  # before the strategy reads it

    from trainboard.components.train.core import train

    with tempfile.TemporaryDirectory(prefix="trainboard-worker-") as local:
        if storage.is_gcs(dataset_dir):
            dataset_dir = str(storage.download_dir(dataset_dir, Path(local) / "data"))
        saved = str(Path(local) / "model") if storage.is_gcs(model_dir) else model_dir
        train(dataset_dir, saved, root, run, config=config, gpus=int(gpus[0]) if gpus else 0)
        if saved != model_dir and worker_index(os.environ["TF_CONFIG"]) == 0:
            storage.upload_dir(saved, model_dir)


if __name__ == "__main__":
    main(sys.argv[1:])
