"""evaluate: the trained model on the test split: loss, accuracy, top-5 accuracy, per-class precision,
recall and F1 with their averages, and a confusion matrix; also as TensorBoard run ``<run>/evaluation``.
The current champion is measured on the same split, for the promotion gate."""

from __future__ import annotations

import logging
import tempfile

import keras
import numpy as np
import tensorflow as tf

from trainboard import layout, storage
from trainboard.artifacts.champion import ChampionRecordError, champion_model_problem, read_champion
from trainboard.artifacts.dataset import read_encoded, read_info, read_split
from trainboard.artifacts.evaluation import Evaluation, RescoredChampion
from trainboard.artifacts.model import ModelInfo, load_trained
from trainboard.artifacts.serving_export import TOLERANCE, check_serving_export
from trainboard.checks import check_run_name
from trainboard.components.evaluate.metrics import compute_metrics
from trainboard.components.evaluate.summaries import confusion_matrix_image, write_evaluation_logs
from trainboard.errors import UsageError
from trainboard.invocation import command
from trainboard.mlflow_log import MlflowLog
from trainboard.roots import check_root

log = logging.getLogger(__name__)


def predict_test_split(
    model: keras.Model, model_info: ModelInfo, dataset_dir: str, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """(labels, class probabilities) over the test split, at the model's own image size."""
    labels, probabilities = [], []
    test = read_split(dataset_dir, "test", model_info.image_size).batch(batch_size)
    for images, batch_labels in test.prefetch(tf.data.AUTOTUNE):
        probabilities.append(model.predict_on_batch(tf.cast(images, tf.float32)))
        labels.append(batch_labels.numpy())
    if not labels:
        return np.zeros(0, np.int64), np.zeros((0, len(model_info.class_names)))
    return np.concatenate(labels), np.concatenate(probabilities)


def rescore_champion(
    root: str,
    run: str,
    dataset_dir: str,
    class_names: list[str],
    *,
    batch_size: int,
    force_promote: bool = False,
    this_right: np.ndarray | None = None,
) -> RescoredChampion | None:
    """The current champion's accuracy, and F1 per class for the report's comparison, on this run's test
    split: the recorded one was measured on the data of its own run, which a changed folder or seed makes
    a different test. None when there is no champion, it is this run (a retry), its record is unreadable
    (promote says so) or its classes differ. A champion whose model is missing or unreadable is a
    UsageError naming the record, the model and the ways out (None with force_promote: it is replaced).
    ``this_right``: which test examples this run's model got right, to count the examples on which the two
    models disagree (McNemar's test in promote)."""
    try:
        champion, _ = read_champion(root)
    except ChampionRecordError:
        return None
    if champion is None or champion.run == run:
        return None
    champion_model = champion.model_in(root)
    with tempfile.TemporaryDirectory(prefix="trainboard-champion-") as local:
        try:
            if champion_model_problem(root):
                raise FileNotFoundError("missing, or not matching its manifest")
            storage.download_dir(champion_model, local)
            model, model_info = load_trained(local)
        except Exception as e:  # whatever makes it unreadable, the way out is the same
            reason = str(e).replace(local, champion_model.rstrip("/"))  # where it is, not the copy
            problem = (
                f"{layout.champion_record(root)} names champion {champion.run} whose model "
                f"{champion_model} is missing or unreadable ({type(e).__name__}: {reason}). "
                f"Roll back to an earlier champion "
                f"(`{command(f'champion rollback --root {root} --to RUN')}`; "
                f"`{command('champion history')}` lists them), or run with force_promote=true to replace it"
            )
            if force_promote:
                log.warning("%s; force_promote: not re-measured", problem)
                return None
            raise UsageError(layout.CHAMPION_RECORD, problem) from None
        if model_info.class_names != class_names:
            log.warning("champion %s has other classes than this dataset: not re-measured", champion.run)
            return None
        labels, probabilities = predict_test_split(model, model_info, dataset_dir, batch_size)
    scores = compute_metrics(labels, probabilities, class_names)
    rescored = RescoredChampion(champion.run, scores.accuracy, [c.f1 for c in scores.per_class])
    if this_right is not None and len(this_right) == len(labels):
        champion_right = probabilities.argmax(axis=1) == labels
        rescored.only_this_right = int(np.sum(this_right & ~champion_right))
        rescored.only_champion_right = int(np.sum(~this_right & champion_right))
    return rescored


def check_served_as_evaluated(model_dir: str, dataset_dir: str, probabilities: np.ndarray) -> None:
    """What is served is what was evaluated: the serving export, given the test split's encoded images,
    returns the Keras model's probabilities within TOLERANCE; else ServingExportMismatch, which stops the
    run before the gate, so a broken export is never promoted."""
    worst = check_serving_export(model_dir, read_encoded(dataset_dir, "test"), probabilities)
    log.info("serving export predicts as the Keras model (largest difference %.2g <= %g)", worst, TOLERANCE)


def evaluate(
    dataset_dir: str,
    model_dir: str,
    root: str,
    run: str,
    *,
    batch_size: int = 64,
    force_promote: bool = False,
) -> Evaluation:
    root = check_root(root)
    check_run_name(run)
    mlflow = MlflowLog.from_environment(run)  # connects while the model is measured
    model, model_info = load_trained(model_dir)
    info = read_info(dataset_dir)
    if info.class_names != model_info.class_names:
        raise ValueError(
            f"model classes {model_info.class_names} do not match the dataset's {info.class_names}: "
            "evaluate a model trained on this dataset"
        )
    if not info.examples.get("test"):
        raise ValueError(f"{dataset_dir}: the test split is empty: there is nothing to evaluate")
    labels, probabilities = predict_test_split(model, model_info, dataset_dir, batch_size)
    check_served_as_evaluated(model_dir, dataset_dir, probabilities)
    result = compute_metrics(labels, probabilities, info.class_names)
    result.champion_rescored = rescore_champion(
        root,
        run,
        dataset_dir,
        info.class_names,
        batch_size=batch_size,
        force_promote=force_promote,
        this_right=probabilities.argmax(axis=1) == labels,
    )
    # Step: the epochs trained, so the point sits at the end of the run's training curves.
    write_evaluation_logs(layout.tensorboard_dir(root, run), result, step=model_info.epochs)
    if mlflow:
        _log_to_mlflow(mlflow, result, step=model_info.epochs)
    return result


def _log_to_mlflow(mlflow: MlflowLog, result: Evaluation, step: int) -> None:
    """The test metrics (as TensorBoard's ``evaluation`` run names them) and the confusion matrix's
    picture to the MLflow run (trainboard/mlflow_log.py)."""
    mlflow.log_metrics({f"{layout.EVALUATION}/{k}": v for k, v in result.headline().items()}, step=step)
    mlflow.log_image(
        confusion_matrix_image(result.confusion_matrix, result.class_names), "confusion_matrix.png"
    )
    mlflow.close()
