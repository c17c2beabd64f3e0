"""Why the race stopped a run early (components/train/race.py), as three files record it: the training
state (``state.json``: rule, epoch, reason, epochs), the model's metadata (``trainboard_model.json``:
train adds the time it saved, seconds_saved and gpus) and the run's outcome (``outcome.json``, promote
copies it). In each file it is the JSON object to_json writes, {} when the run was not stopped.
TensorFlow-free."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class RaceStop:
    rule: str  # the race's rule that stopped it (race.BROKEN, race.CANNOT_WIN)
    epoch: int  # the epoch (1-based) after which it stopped
    reason: str  # the rule's sentence, with the values that decided it
    epochs: int  # the epochs the run was to train
    # Train adds these to the model's record (not in state.json): the epochs not run times the median
    # epoch training time, and the GPUs that would have run them.
    seconds_saved: float | None = None
    gpus: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as the files hold it: its fields in this order, the ones not set left out."""
        return {name: value for name, value in asdict(self).items() if value is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> RaceStop | None:
        """The record of a file's JSON object; None for {} (or no object): the run was not stopped."""
        if not data:
            return None
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def stopped_reason(stop: RaceStop | None) -> str:
    """Why the race stopped the run early (``stop``: the model's record of it), with the time it saved
    ("" when it did not)."""
    if stop is None:
        return ""
    saved = f"{stop.seconds_saved or 0:g} s of training saved"
    if stop.gpus:
        saved += f" on {stop.gpus} GPU(s)"
    return (
        f"the race stopped it after epoch {stop.epoch} of {stop.epochs} ({stop.rule}: {stop.reason}); {saved}"
    )
