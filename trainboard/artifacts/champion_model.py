"""The champion's model folder, ``<root>/models/champion/``: kept a copy of the model the champion record
names, by promote and by the admin commands that change the record (rollback, repair)."""

from __future__ import annotations

from datetime import UTC, datetime

from trainboard import layout
from trainboard.artifacts.champion import copy_model, read_champion, record_history

# Each lost compare-and-swap means another run promoted in between; this many in a row means something is
# wrong (a writer that ignores preconditions), not bad luck.
MAX_ATTEMPTS = 10


def now() -> str:
    """A record's time: UTC, to the microsecond."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def sync_champion_model(root: str) -> None:
    """Make ``<root>/models/champion/`` a copy of the model the record names.

    Runs promoted at about the same time may copy at once; each copies again until the record did not
    change while it copied, so the run that wrote the newest record copies last and the folder ends up
    holding exactly its model. The folder's manifest is taken away first and written last (copy_model),
    so a copy killed half-way is never taken for a model; the next call repairs it. Also appends the
    record to the history if a crash left it out.
    """
    for _ in range(MAX_ATTEMPTS):
        champion, generation = read_champion(root)
        if champion is None:
            return
        record_history(root, champion)
        copy_model(champion.model_in(root), layout.champion_model_dir(root), champion.run)
        if read_champion(root)[1] == generation:
            return
    raise RuntimeError(f"{layout.champion_record(root)} kept changing while its model was copied")
