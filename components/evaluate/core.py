"""evaluate: the trained model on the test split: loss, accuracy, top-5 accuracy, per-class precision,
recall and F1 with their averages, and a confusion matrix; also as TensorBoard run ``<run>/evaluation``."""

from __future__ import annotations

import numpy as np

from trainboard import layout
from trainboard.components.evaluate.metrics import Evaluation, compute_metrics
from trainboard.components.evaluate.summaries import write_evaluation_logs
from trainboard.components.train.core import load_trained
from trainboard.config import check_root, check_run_name
from trainboard.dataset_artifact import load_split, read_info


def evaluate(dataset_dir: str, model_dir: str, root: str, run: str, batch_size: int = 64) -> Evaluation:
    root = check_root(root)
    check_run_name(run)
    model, model_info = load_trained(model_dir)
    info = read_info(dataset_dir)
    if info.class_names != model_info.class_names:
        raise ValueError(
            f"model classes {model_info.class_names} do not match the dataset's {info.class_names}: "
            "evaluate a model trained on this dataset"
        )
    labels, probabilities = [], []
    for images, batch_labels in load_split(dataset_dir, "test", model_info.image_size, batch_size):
        probabilities.append(model.predict_on_batch(images))
        labels.append(batch_labels.numpy())
    if not labels:
        raise ValueError(f"{dataset_dir}: the test split is empty: there is nothing to evaluate")
    result = compute_metrics(np.concatenate(labels), np.concatenate(probabilities), info.class_names)
    # Step: the epochs trained, so the point sits at the end of the run's training curves.
    write_evaluation_logs(layout.tensorboard_dir(root, run), result, step=model_info.epochs)
    return result
