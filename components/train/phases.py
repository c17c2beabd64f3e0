"""Freeze, then fine-tune: the epochs of a run in phases, each with its trainable layers and its own
optimizer. The TensorBoard series goes on across phases (steps and epochs continue; the learning-rate
curve drops and a "phase" text note marks the boundary), and a resume at any epoch, the boundary
included, takes up the phase that epoch belongs to."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import keras
import tensorflow as tf

from trainboard.artifacts.training_state import TrainingState
from trainboard.components.train.attempt import Attempt
from trainboard.components.train.models import set_trainable
from trainboard.components.train.summaries import write_note
from trainboard.config import TrainingConfig
from trainboard.streaming import StreamingTensorBoard
from trainboard.weights import NONE

log = logging.getLogger(__name__)
# The training split's epochs from..to (0-based, end excluded), one dataset: core._datasets.
TrainingEpochs = Callable[[int, int], tf.data.Dataset]


@dataclass(frozen=True)
class Phase:
    name: str
    start: int  # its first epoch (0-based)
    end: int  # the epochs done when it ends
    learning_rate: float
    frozen: bool  # the backbone frozen, the head alone trained

    def describe(self, model: str, trainable_layers: int) -> str:
        what = (
            f"head only, the {model} backbone frozen"
            if self.frozen
            else f"head and {trainable_layers} {model} layers"
            if trainable_layers
            else "every layer"
        )
        return (
            f"epochs {self.start + 1}-{self.end}: {self.name} ({what}), learning rate {self.learning_rate:g}"
        )


def phases(config: TrainingConfig) -> list[Phase]:
    if not config.freeze_epochs:
        return [Phase("train", 0, config.epochs, config.learning_rate, frozen=False)]
    frozen = Phase("frozen", 0, config.freeze_epochs, config.learning_rate, frozen=True)
    if config.freeze_epochs == config.epochs:
        return [frozen]
    tune_rate = config.fine_tune_learning_rate
    return [frozen, Phase("fine-tune", config.freeze_epochs, config.epochs, tune_rate, frozen=False)]


def train_phases(
    attempt: Attempt,
    model: keras.Model,
    state: TrainingState,
    data: tuple[TrainingEpochs, tf.data.Dataset],
    *,
    tensorboard: StreamingTensorBoard,
    callbacks: list[keras.callbacks.Callback],
) -> None:
    """Fit the phases the run has not done yet, each from the epoch the state says, with ``callbacks``
    (``tensorboard``, whose batch steps go on across fits, among them); a stop (the race's or early
    stopping's) ends them."""
    config = attempt.config
    run_phases = phases(config)
    for phase in run_phases:
        if state.epoch >= phase.end or state.stopped:  # a stopped run stays stopped when resumed
            continue
        if state.epoch == phase.start:  # the phase begins now (a resumed one has its optimizer saved)
            _begin_phase(attempt, model, phase, several=len(run_phases) > 1)
        fit_callbacks = [*callbacks]  # and early stopping, in the last phase alone
        if config.early_stopping_patience and phase is run_phases[-1]:
            fit_callbacks.append(
                keras.callbacks.EarlyStopping(
                    patience=config.early_stopping_patience, restore_best_weights=True
                )
            )
        tensorboard.initial_step = state.epoch * attempt.steps_per_epoch  # batch steps go on across fits
        try:
            model.fit(
                data[0](state.epoch, phase.end),  # the epochs left, each as it would be in one go
                validation_data=data[1],
                epochs=phase.end,
                initial_epoch=state.epoch,
                steps_per_epoch=attempt.steps_per_epoch,  # Keras then goes on with one iterator
                callbacks=fit_callbacks,
                verbose=2,
                shuffle=False,  # the input pipeline shuffles; Keras ignores (and warns about) it on a Dataset
            )
        finally:
            tensorboard.close()  # also after a failure: every event written so far reaches the bucket
        if state.epoch < phase.end:  # stopped early
            break


def _begin_phase(attempt: Attempt, model: keras.Model, phase: Phase, *, several: bool) -> None:
    """The phase's trainable layers and a fresh optimizer; where it begins, in the log and (``several``
    phases) as a note in the run's series."""
    config = attempt.config
    with attempt.strategy.scope():
        trainable = (
            set_trainable(model, phase.frozen, config.fine_tune_layers) if config.weights != NONE else 0
        )
        _compile(model, config, phase, attempt.steps_per_epoch)
    if several:
        write_note(attempt.logs, "phase", phase.describe(config.model, trainable), step=phase.start)
    log.info("%s", phase.describe(config.model, trainable))


def _compile(model: keras.Model, config: TrainingConfig, phase: Phase, steps_per_epoch: int) -> None:
    """A fresh optimizer for the phase (after trainable flags changed, Keras needs a compile)."""
    learning_rate = phase.learning_rate
    if config.lr_schedule == "cosine":
        steps = (phase.end - phase.start) * steps_per_epoch
        learning_rate = keras.optimizers.schedules.CosineDecay(phase.learning_rate, decay_steps=steps)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
    )
