"""The tournament's race: a trial against its siblings (the night's other trials), epoch by epoch.

Each epoch a trial reads its siblings' committed per-epoch histories (``checkpoints/<sibling>/state.json``,
as far as each has trained: siblings train side by side, or before it at a parallelism of 1) and compares
its validation accuracy with theirs at the same epoch (every trial trains the same epochs: sweep.NOT_SWEPT).
The leading trial (at least as good as every sibling that reached the epoch) never stops. Another stops

- when it is broken, whatever the settings, after ``race_warmup`` epochs: validation accuracy at chance
  level (below chance + 10% of the way to 1) where the best sibling was well above it (half the way), or
  a training loss over twice a uniform guess's (2 ln classes: confidently wrong, diverged) where a
  sibling's is below a uniform guess's (it learned); a NaN loss stops it already in the champion's race
  (race.verdict);
- when it is clearly behind, opt-in (``race_margin`` > 0), the median stopping rule (Golovin et al.,
  "Google Vizier", KDD 2017; Katib's medianstop): its best validation accuracy so far trails the median
  of its siblings' best so far at the same epoch by more than ``race_margin``, for ``race_patience``
  epochs in a row after the warm-up. docs/pipeline.md has a worked example and its false-stop risk.
"""

from __future__ import annotations

import math
import statistics

import keras

from trainboard.artifacts.race_stop import RaceStop
from trainboard.artifacts.training_state import TrainingState, load_state
from trainboard.config import TrainingConfig
from trainboard.errors import UsageError

BROKEN, BEHIND = "broken", "behind its siblings"


def _best_so_far(curve: list[float], epoch: int) -> float:
    return max(curve[:epoch])


def sibling_verdict(
    val_accuracy: list[float],
    siblings: dict[str, list[float]],
    config: TrainingConfig,
    *,
    classes: int,
    losses: tuple[list[float], dict[str, list[float]]] = ([], {}),
) -> dict | None:
    """Whether to stop this trial after the last epoch of ``val_accuracy`` (oldest first), given each
    sibling's validation accuracy so far (``siblings``, by run) and the training losses (``losses``: this
    trial's, and each sibling's): None to go on, else rule, epoch and reason (RaceStop's). Pure: the
    tests call it directly."""
    epoch = len(val_accuracy)
    reached = {run: curve for run, curve in siblings.items() if len(curve) >= epoch}
    if epoch <= config.race_warmup or not reached:
        return None
    mine = _best_so_far(val_accuracy, epoch)
    leader, theirs = max(
        ((run, _best_so_far(curve, epoch)) for run, curve in reached.items()), key=lambda x: x[1]
    )
    if mine >= theirs:
        return None  # the leading trial is never stopped
    chance = 1 / classes
    if val_accuracy[-1] < chance + 0.1 * (1 - chance) and theirs >= chance + 0.5 * (1 - chance):
        return {
            "rule": BROKEN,
            "epoch": epoch,
            "reason": f"validation accuracy {val_accuracy[-1]:.4f} at epoch {epoch} is at chance level "
            f"({chance:.4f} for {classes} classes) where sibling {leader} had {theirs:.4f}",
        }
    if diverged := _diverged(epoch, losses, classes):
        return {"rule": BROKEN, "epoch": epoch, "reason": diverged}
    if config.race_margin <= 0 or epoch - config.race_patience < config.race_warmup:
        return None
    gaps = []
    for at in range(epoch - config.race_patience + 1, epoch + 1):
        others = [_best_so_far(curve, at) for curve in siblings.values() if len(curve) >= at]
        gaps.append(statistics.median(others) - _best_so_far(val_accuracy, at))
    if all(gap > config.race_margin for gap in gaps):
        return {
            "rule": BEHIND,
            "epoch": epoch,
            "reason": f"best validation accuracy trailed the median of its siblings' by more than "
            f"race_margin {config.race_margin:g} for {config.race_patience} epoch(s) in a row "
            f"(epoch {epoch}: "
            f"{mine:.4f}, {gaps[-1]:.4f} behind; leader {leader} {theirs:.4f})",
        }
    return None


def _diverged(epoch: int, losses: tuple[list[float], dict[str, list[float]]], classes: int) -> str:
    """Why the trial's training loss says it diverged at ``epoch`` ("" when it does not): over twice a
    uniform guess's cross-entropy (ln classes) where a sibling's is below a uniform guess's."""
    mine, theirs = losses
    uniform = math.log(classes)
    learned = {run: curve[epoch - 1] for run, curve in theirs.items() if len(curve) >= epoch}
    learned = {run: loss for run, loss in learned.items() if loss < uniform}
    if len(mine) < epoch or mine[epoch - 1] <= 2 * uniform or not learned:
        return ""
    run, loss = min(learned.items(), key=lambda x: x[1])
    return (
        f"training loss {mine[epoch - 1]:.4f} at epoch {epoch} is over twice a uniform guess's "
        f"({2 * uniform:.4f} for {classes} classes) where sibling {run}'s is {loss:.4f}"
    )


def sibling_curves(root: str, siblings: tuple[str, ...], metric: str) -> dict[str, list[float]]:
    """Each sibling's committed ``metric`` per epoch (empty before its first epoch; a sibling whose state
    cannot be read is not raced)."""
    curves = {}
    for run in siblings:
        try:
            curves[run] = list(load_state(root, run).history.get(metric, []))
        except UsageError:
            continue
    return curves


class SiblingRace(keras.callbacks.Callback):
    """Each epoch, unless the champion's race stopped the run already: the verdict against the siblings'
    curves as they are now; a stop is recorded in ``state`` (place it before the commit) and ends fit."""

    def __init__(
        self,
        root: str,
        siblings: tuple[str, ...],
        config: TrainingConfig,
        *,
        classes: int,
        state: TrainingState,
    ):
        super().__init__()
        self.root, self.siblings, self.config, self.classes, self.state = (
            root,
            siblings,
            config,
            classes,
            state,
        )

    def on_epoch_end(self, epoch, logs=None):
        if self.state.stopped or not self.siblings:
            return
        logs, history = logs or {}, self.state.history
        accuracy = [*history.get("val_accuracy", []), float(logs.get("val_accuracy", 0.0))]
        losses = [*history.get("loss", []), float(logs.get("loss", math.nan))]
        siblings = sibling_curves(self.root, self.siblings, "val_accuracy")
        sibling_losses = sibling_curves(self.root, self.siblings, "loss")
        stop = sibling_verdict(
            accuracy, siblings, self.config, classes=self.classes, losses=(losses, sibling_losses)
        )
        if stop is not None:
            self.state.stopped = RaceStop(**stop, epochs=self.config.epochs).to_json()
            self.model.stop_training = True
