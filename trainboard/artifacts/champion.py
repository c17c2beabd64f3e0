"""The champion record, ``<root>/champion.json``: which run's model is the champion, where it is, its
metrics, when and why it was promoted. promote writes it; evaluate reads it to re-measure the champion.

It changes only by compare-and-swap (read_champion's generation, then write_champion), so of two runs
promoting at once exactly one write wins (a generation precondition on GCS, a lock and a content check
on a local root). TensorFlow-free.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from trainboard import layout, storage


class ChampionRecordError(ValueError):
    """The champion record cannot be read; nothing was written."""


@dataclass
class ChampionRecord:
    run: str
    model_uri: str
    metrics: dict[str, float]
    promoted_at: str  # ISO 8601, UTC
    reason: str

    @property
    def accuracy(self) -> float:
        return self.metrics["test_accuracy"]


def parse_record(data: bytes, uri: str) -> ChampionRecord:
    """The record in ``data``, or ChampionRecordError naming what is wrong and how to recover."""
    try:
        fields = json.loads(data)
        record = ChampionRecord(**fields)
        accuracy = record.accuracy
        if not (isinstance(record.run, str) and isinstance(record.model_uri, str) and 0 <= accuracy <= 1):
            raise ValueError(
                f"run {record.run!r}, model_uri {record.model_uri!r}, test_accuracy {accuracy!r}"
            )
    except (ValueError, TypeError, KeyError) as e:
        raise ChampionRecordError(
            f"{uri} is not a valid champion record ({type(e).__name__}: {e}); nothing was overwritten. "
            "Restore it (its run, model_uri, metrics.test_accuracy, promoted_at and reason), or delete it "
            "to let the next model that meets min_accuracy become the champion"
        ) from None
    return record


def read_champion(root: str) -> tuple[ChampionRecord | None, int]:
    """The current record (None when there is none) and its generation, for write_champion."""
    uri = layout.champion_record(root)
    data, generation = storage.read_versioned(uri)
    return (parse_record(data, uri) if data is not None else None), generation


def write_champion(root: str, record: ChampionRecord, generation: int) -> None:
    """Replace the record only if it is still at ``generation`` (0: only if there is none);
    storage.PreconditionFailed when another run wrote it in between."""
    data = json.dumps(asdict(record), indent=2).encode()
    storage.write_if_generation(layout.champion_record(root), data, generation)
