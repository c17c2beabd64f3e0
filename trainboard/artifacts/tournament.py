"""A night's tournament, ``<root>/checkpoints/<run>/tournament.json``: its trials (settings, best
validation accuracy, epochs, why stopped, time saved) and the chosen one, whose run evaluate and promote
judge (its outcome.json is the night's). choose_trial writes it; what tells the team reads it. A run
without a sweep has none. TensorFlow-free."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from trainboard import layout, storage

TOURNAMENT_FILE = "tournament.json"


@dataclass
class Tournament:
    run: str  # the night's run
    chosen: str  # the trial chosen on validation accuracy
    trials: list[dict[str, Any]] = field(default_factory=list)  # choose_trial's TrialResult rows

    def lines(self) -> list[str]:
        """One line a trial, for a notification."""
        return [
            f"{t['run']}{' (chosen)' if t['run'] == self.chosen else ''}: {t['settings']}, best val accuracy "
            f"{t['best_val_accuracy']:.4f}, {t['epochs']}/{t['planned']} epochs"
            + (
                f", stopped ({t['stopped'].split(':')[0]}), {t['seconds_saved']:g} s saved"
                if t["stopped"]
                else ""
            )
            for t in self.trials
        ]


def tournament_uri(root: str, run: str) -> str:
    return storage.join(layout.checkpoint_dir(root, run), TOURNAMENT_FILE)


def write_tournament(root: str, tournament: Tournament) -> None:
    body = {"run": tournament.run, "chosen": tournament.chosen, "trials": tournament.trials}
    storage.write_bytes(tournament_uri(root, tournament.run), json.dumps(body, indent=2).encode())


def read_tournament(root: str, run: str) -> Tournament | None:
    """The night's tournament; None without a sweep (or when it cannot be read)."""
    data, _ = storage.read_versioned(tournament_uri(root, run))
    try:
        return Tournament(**json.loads(data)) if data is not None else None
    except (ValueError, TypeError):
        return None
