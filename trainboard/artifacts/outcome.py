"""A run's outcome, ``<root>/checkpoints/<run>/outcome.json``: what promote decided and why, the headline
metrics, the champion after the decision and, for a run the race stopped early, where and what it saved.
promote writes it last; what tells the team (the exit handler's notification) reads it, and finds none
for a run that failed before promote. Beside the run's state.json: gc's rules for the run apply to it.
TensorFlow-free."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from trainboard import layout, storage

OUTCOME_FILE = "outcome.json"
PROMOTED, NOT_PROMOTED, STOPPED_EARLY = "promoted", "not promoted", "stopped early"


@dataclass
class RunOutcome:
    run: str
    outcome: str  # PROMOTED, NOT_PROMOTED or STOPPED_EARLY
    reason: str
    metrics: dict[str, float] = field(default_factory=dict)  # test metrics (Evaluation.headline)
    champion: str = ""  # the champion's run after the decision
    # Why the race stopped it, the model's record (RaceStop.to_json(), race_stop.py); empty: it was not.
    stopped: dict[str, Any] = field(default_factory=dict)
    registry: str = ""  # why the Model Registry did not take the promotion; "": it did, or none is set


def outcome_uri(root: str, run: str) -> str:
    return storage.join(layout.checkpoint_dir(root, run), OUTCOME_FILE)


def write_outcome(root: str, outcome: RunOutcome) -> None:
    storage.write_bytes(outcome_uri(root, outcome.run), json.dumps(asdict(outcome), indent=2).encode())


def read_outcome(root: str, run: str) -> RunOutcome | None:
    """The run's outcome; None when promote did not get to write one (or it cannot be read)."""
    data, _ = storage.read_versioned(outcome_uri(root, run))
    try:
        return RunOutcome(**json.loads(data)) if data is not None else None
    except (ValueError, TypeError):
        return None
