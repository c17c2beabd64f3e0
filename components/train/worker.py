"""One worker of a multi-worker train, in its own process: a TrainJob's pod or a process `trainboard
local` starts (components/train/local_workers.py). Its TF_CONFIG comes from cluster_spec.tf_config (the
worker count, JOB_COMPLETION_INDEX, where the workers are); then it trains as core.train does.

    python -m components.train.worker DATASET_DIR MODEL_DIR ROOT RUN CONFIG_JSON [GPUS]
"""

from __future__ import annotations

import json
import os
import sys

from components.train.cluster_spec import tf_config
from trainboard.config import TrainingConfig


def main(argv: list[str]) -> None:
    dataset_dir, model_dir, root, run, config_json, *gpus = argv
    config = TrainingConfig(**json.loads(config_json))
    os.environ["TF_CONFIG"] = tf_config(config.workers, os.environ)  # before the strategy reads it

    from components.train.core import train

    train(dataset_dir, model_dir, root, run, config, gpus=int(gpus[0]) if gpus else 0)


if __name__ == "__main__":
    main(sys.argv[1:])
