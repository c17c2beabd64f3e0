"""Cleanup of old checkpoints in a root (`trainboard gc`): which ``checkpoints/<run>/`` folders may go.

Kept, whatever ``keep`` says: every run of the champion's lineage (the record's run and its previous, every
run in ``champion-history/``, every run with a ``models/<run>/``), and every run still training (its
``state.json`` has fewer epochs done than it was started with and the run has no evaluation yet, so it may
be resumed, or a file of it changed in the last hour).
Of the rest, the ``keep`` newest (by their last change) are kept. Only ``checkpoints/<run>/`` folders
named as runs are ever deleted: never ``models/``, ``tensorboard/``, the record or its history, and a
symbolic link among them is deleted, not followed (storage.delete_folder). TensorFlow-free.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from trainboard import layout, storage
from trainboard.artifacts.champion import ChampionRecord, read_champion, read_history
from trainboard.artifacts.training_state import STATE_FILE, DamagedState, read_state
from trainboard.checks import is_run_name

ACTIVE_SECONDS = 3600  # a run with a file changed this recently may still be training


@dataclass
class RunCheckpoints:
    run: str
    files: int
    bytes: int
    modified: float  # the newest file's time, seconds since the epoch
    kept_because: str = ""  # "" : deleted (or would be)
    # Where a symbolic link standing for the run's folder points ("" for a folder): no files of its own.
    link_to: str = ""


@dataclass
class Plan:
    root: str
    keep: int
    runs: list[RunCheckpoints] = field(default_factory=list)  # oldest first

    @property
    def delete(self) -> list[RunCheckpoints]:
        return [r for r in self.runs if not r.kept_because]

    @property
    def kept(self) -> list[RunCheckpoints]:
        return [r for r in self.runs if r.kept_because]

    @property
    def delete_bytes(self) -> int:
        return sum(r.bytes for r in self.delete)


def lineage(root: str) -> set[str]:
    """Every run the champion ever was or came from: record, history (run and previous), models/<run>/."""
    record, _ = read_champion(root)
    records: list[ChampionRecord] = read_history(root) + ([record] if record else [])
    runs = {r.run for r in records} | {r.previous for r in records if r.previous}
    models = layout.models_root(root)
    runs |= {rel.split("/", 1)[0] for rel in storage.list_versions(models) if "/" in rel}
    # A record whose model lives under checkpoints/<run>/ (never written so, but never deleted either).
    checkpoints = layout.checkpoints_root(root) + "/"
    for model in (r.model_in(root) for r in records):
        if model.startswith(checkpoints):
            runs.add(model[len(checkpoints) :].split("/", 1)[0])
    return runs - {layout.CHAMPION}


def _unfinished(root: str, run: str) -> str:
    """Why ``run``'s state says it is not done ("" when it is done or has no state)."""
    try:
        state = read_state(root, run)
    except DamagedState:  # parsed: a field of another type is damage too
        return f"its {STATE_FILE} cannot be read"
    if state is None:
        return ""
    done, epochs = state.epoch, state.started_with.get("epochs")
    if not (isinstance(epochs, int) and done < epochs):
        return ""
    # Short of its epochs: stopped early (early_stopping_patience) or cut off. One the pipeline went on to
    # evaluate is done; one without an evaluation may still be resumed.
    if storage.list_files(layout.evaluation_dir(root, run)):
        return ""
    return f"still training ({done} of {epochs} epochs done, not evaluated)"


def _link(folder: str) -> str:
    """Where ``folder`` points when it is a symbolic link ("" when it is not: always on gs://, which has
    none). gc deletes the link, never what it points at, so the link counts none of those files."""
    return "" if storage.is_gcs(folder) or not Path(folder).is_symlink() else os.readlink(folder)


def _checkpoints(root: str, run: str, files: list[tuple[int, float]]) -> RunCheckpoints:
    modified = max(m for _, m in files)  # a link's: its target's files' (kept or not by the same rules)
    link = _link(layout.checkpoint_dir(root, run))
    if link:  # none of those files is deleted: not counted
        return RunCheckpoints(run, 0, 0, modified, link_to=link)
    return RunCheckpoints(run, len(files), sum(s for s, _ in files), modified)


def plan(root: str, keep: int, now: float | None = None) -> Plan:
    """What `trainboard gc` deletes: every run's checkpoints not kept (see the module docstring)."""
    now = time.time() if now is None else now
    checkpoints = layout.checkpoints_root(root)
    per_run: dict[str, list[tuple[int, float]]] = {}
    for rel, (size, modified) in storage.list_modified(checkpoints).items():
        # Only the layout's own names: a file directly under checkpoints/, or a folder no run can be
        # called, is no run's (and is never deleted).
        if "/" in rel and is_run_name(rel.split("/", 1)[0]):
            per_run.setdefault(rel.split("/", 1)[0], []).append((size, modified))
    runs = [_checkpoints(root, run, files) for run, files in per_run.items()]
    runs.sort(key=lambda r: (r.modified, r.run))
    champions = lineage(root)
    newest = {r.run for r in runs[-keep:]} if keep > 0 else set()
    for r in runs:
        if r.run in champions:
            r.kept_because = "champion lineage"
        elif r.run in newest:
            r.kept_because = f"one of the newest {keep}"
        elif now - r.modified < ACTIVE_SECONDS:
            r.kept_because = f"changed {max(0, int(now - r.modified)) // 60} min ago: may still be training"
        else:
            r.kept_because = _unfinished(root, r.run)
    return Plan(root, keep, runs)


@dataclass
class Removed:
    """What execute really removed: files and their bytes, symbolic links; and what it could not."""

    files: int = 0
    bytes: int = 0
    links: int = 0
    left: list[str] = field(default_factory=list)  # a run's folder still holding files afterwards


def execute(result: Plan) -> Removed:
    """Delete the checkpoints of every run ``result`` does not keep, file by file; what was removed, counted
    from what is gone afterwards (a link is one link, not its target's files)."""
    removed = Removed()
    for r in result.delete:
        folder = layout.checkpoint_dir(result.root, r.run)
        before = {} if r.link_to else storage.list_modified(folder)
        storage.delete_folder(folder)
        if r.link_to:
            removed.links += 0 if Path(folder).is_symlink() else 1
            continue
        after = storage.list_modified(folder)
        gone = set(before) - set(after)
        removed.files += len(gone)
        removed.bytes += sum(before[rel][0] for rel in gone)
        if after:
            removed.left.append(folder)
    return removed
