"""Freeze, then fine-tune: the epochs of a run in phases, each with its trainable layers and its own
optimizer. The TensorBoard series goes on across phases (steps and epochs continue; the learning-rate
curve drops and a "phase" text note marks the boundary), and a resume at any epoch, the boundary
included, takes up the phase that epoch belongs to."""

from __future__ import annotations

from dataclasses import dataclass

from trainboard.config import TrainingConfig


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
