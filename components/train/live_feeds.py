"""Where else the chief reports each epoch as it ends, besides TensorBoard: an MLflow run where
MLFLOW_TRACKING_URI is set (trainboard/mlflow_log.py), Kubeflow Trainer's TrainJob status inside a TrainJob
that reports it (trainer_progress.py). Each feed sends from its own thread and gives up
after its first failure: the training's pace and outcome never depend on it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import keras

from trainboard.components.train.trainer_progress import TrainerProgress
from trainboard.mlflow_log import MlflowLog


def tensorboard_names(logs: Mapping[str, float]) -> dict[str, float]:
    """Keras's epoch logs under the names TensorBoard shows them: ``<TensorBoard run>/<tag>``, as Keras's
    TensorBoard callback writes ``val_<name>`` to the validation run as ``epoch_<name>`` and the rest to
    the train run (keras/src/callbacks/tensorboard.py, Keras 3)."""
    names = {}
    for name, value in logs.items():
        split, metric = ("validation", name[4:]) if name.startswith("val_") else ("train", name)
        names[f"{split}/epoch_{metric}"] = float(value)
    return names


class MlflowEpochs(keras.callbacks.Callback):
    """Each epoch's metrics to the MLflow run as the epoch ends, at step = the epoch's number (1, 2, ...:
    the epochs trained so far, as `trainboard local` counts them)."""

    def __init__(self, mlflow: MlflowLog):
        super().__init__()
        self.mlflow = mlflow

    def on_epoch_end(self, epoch, logs=None):
        self.mlflow.log_metrics(tensorboard_names(logs or {}), step=epoch + 1)


@contextmanager
def live_feeds(run: str, epochs: int, *, chief: bool) -> Iterator[list[keras.callbacks.Callback]]:
    """The callbacks that feed the chief's epochs (of ``epochs``) elsewhere (none on the other workers),
    closed when training ends, however it ends, each within its bounded wait."""
    mlflow = MlflowLog.from_environment(run) if chief else None
    progress = TrainerProgress.from_environment(epochs, names=tensorboard_names) if chief else None
    try:
        yield ([MlflowEpochs(mlflow)] if mlflow else []) + ([progress] if progress else [])
    finally:
        if mlflow:
            mlflow.close()
        if progress:
            progress.close()
