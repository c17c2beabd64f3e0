"""The nightly race: this run against the champion, epoch by epoch, while it trains.

Each epoch the run's own scalars say who is ahead (``race/val_accuracy_minus_champion``,
``race/val_loss_minus_champion``), against what the champion logged when it trained (its committed
per-epoch history in ``checkpoints/<champion>/state.json``) at the same point of training: the same
epoch, or the same fraction of training when the two ran for different epoch counts.

A run is stopped early
- when it is broken, whatever the settings: a NaN or infinite loss, or, after ``race_warmup`` epochs,
  validation accuracy at chance level (below chance + 10% of the way to 1) where the champion was well
  above it (half the way from chance to 1) at the same point;
- when it cannot win, opt-in (``race_margin`` > 0): after ``race_warmup`` epochs, trailing the champion's
  validation accuracy by more than ``race_margin`` for ``race_patience`` epochs in a row.

Why not the anchors' rules: Katib's median stopping rule and Optuna's MedianPruner compare a trial with
the median of many concurrent or past trials, and SuccessiveHalving with a cohort; Vizier's automated
stopping models the curve. A nightly run has one opponent, the champion, whose whole curve is known in
advance: the question is not "is it in the better half" but "can it still beat that one model", so the
rule compares with that curve directly. The patience and the warm-up guard against the false stop the
anchors guard against with their own start-up steps: a slower-starting schedule (a longer warm-up, a
frozen backbone first) trails early and catches up later; docs/pipeline.md has a worked example.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from trainboard.artifacts.champion import ChampionRecordError, read_champion
from trainboard.artifacts.race_stop import RaceStop
from trainboard.artifacts.training_state import TrainingState, load_state
from trainboard.config import TrainingConfig
from trainboard.errors import UsageError

ACCURACY_GAP, LOSS_GAP = "race/val_accuracy_minus_champion", "race/val_loss_minus_champion"
BROKEN, CANNOT_WIN = "broken", "cannot win"


@dataclass(frozen=True)
class ChampionCurve:
    run: str
    val_accuracy: list[float]
    val_loss: list[float]

    def at(self, epoch: int, epochs: int) -> tuple[float, float]:
        """The champion's (val_accuracy, val_loss) at the same point of training as ``epoch`` (1-based)
        of ``epochs``: the same epoch when both ran as long, else the same fraction of training."""
        index = min(len(self.val_accuracy), max(1, math.ceil(epoch / epochs * len(self.val_accuracy)))) - 1
        return self.val_accuracy[index], self.val_loss[index]


def champion_curve(root: str, run: str) -> ChampionCurve | None:
    """The champion's committed per-epoch validation metrics; None when there is no champion other than
    ``run``, or its history is gone (gc keeps the lineage's checkpoints) or unreadable."""
    try:
        record, _ = read_champion(root)
        state = load_state(root, record.run) if record is not None and record.run != run else None
    except (ChampionRecordError, UsageError):
        return None
    if state is None or record is None:  # (a state is only read with a record)
        return None
    accuracy, loss = state.history.get("val_accuracy", []), state.history.get("val_loss", [])
    if not accuracy or len(accuracy) != len(loss):
        return None
    return ChampionCurve(record.run, accuracy, loss)


def verdict(
    val_accuracy: list[float],
    losses: list[float],
    champion: ChampionCurve | None,
    config: TrainingConfig,
    *,
    classes: int,
) -> dict | None:
    """Whether to stop after the last epoch of ``val_accuracy`` / ``losses`` (this run's, oldest first):
    None to go on, else why: rule, epoch and reason (RaceStop's, the values in the reason). Pure: the
    tests call it directly."""
    epoch = len(val_accuracy)
    loss = losses[-1]
    if not math.isfinite(loss):
        return {"rule": BROKEN, "epoch": epoch, "reason": f"the training loss is {loss} at epoch {epoch}"}
    if champion is None or epoch <= config.race_warmup:
        return None
    chance = 1 / classes
    theirs = [champion.at(e, config.epochs)[0] for e in range(1, epoch + 1)]
    if val_accuracy[-1] < chance + 0.1 * (1 - chance) and theirs[-1] >= chance + 0.5 * (1 - chance):
        return {
            "rule": BROKEN,
            "epoch": epoch,
            "reason": f"validation accuracy {val_accuracy[-1]:.4f} at epoch {epoch} is at chance level "
            f"({chance:.4f} for {classes} classes) where champion {champion.run} had {theirs[-1]:.4f}",
        }
    if config.race_margin <= 0 or epoch - config.race_patience < config.race_warmup:
        return None  # off, or the trailing epochs would reach into the warm-up
    window = range(epoch - config.race_patience, epoch)
    if all(theirs[i] - val_accuracy[i] > config.race_margin for i in window):
        epochs = f"{config.race_patience} epoch{'s' if config.race_patience > 1 else ''}"
        return {
            "rule": CANNOT_WIN,
            "epoch": epoch,
            "reason": f"validation accuracy trailed champion {champion.run}'s by more than race_margin "
            f"{config.race_margin:g} for {epochs} in a row (epoch {epoch}: "
            f"{val_accuracy[-1]:.4f} vs {theirs[-1]:.4f})",
        }
    return None


class Race(keras.callbacks.Callback):
    """Each epoch: the gaps to the champion as the run's own scalars (in ``log_dir``, the run's top
    folder, one event file for the whole attempt), then the verdict; a stop is recorded in ``state``
    (committed with the epoch: place this callback before the commit) and ends fit."""

    def __init__(
        self,
        log_dir: Path,
        champion: ChampionCurve | None,
        config: TrainingConfig,
        *,
        classes: int,
        state: TrainingState,
    ):
        super().__init__()
        self.champion, self.config, self.classes, self.state = champion, config, classes, state
        self.writer = tf.summary.create_file_writer(str(log_dir)) if champion else None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        history = self.state.history
        accuracy = [*history.get("val_accuracy", []), float(logs.get("val_accuracy", math.nan))]
        losses = [*history.get("loss", []), float(logs.get("loss", math.nan))]
        if self.writer is not None and self.champion is not None:  # a writer only with a champion
            theirs_accuracy, theirs_loss = self.champion.at(epoch + 1, self.config.epochs)
            with self.writer.as_default():
                tf.summary.scalar(ACCURACY_GAP, accuracy[-1] - theirs_accuracy, step=epoch)
                tf.summary.scalar(LOSS_GAP, float(logs.get("val_loss", math.nan)) - theirs_loss, step=epoch)
            self.writer.flush()
        stop = verdict(accuracy, losses, self.champion, self.config, classes=self.classes)
        if stop is not None:
            self.state.stopped = RaceStop(**stop, epochs=self.config.epochs).to_json()
            self.model.stop_training = True

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
