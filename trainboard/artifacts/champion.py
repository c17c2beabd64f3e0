"""The champion record, ``<root>/champion.json``: which run's model is the champion, where it is, its
metrics, when, why and by whom it was promoted, and the champion before it. promote and
``trainboard champion rollback`` write it; evaluate reads it to re-measure the champion.

It changes only by compare-and-swap (read_champion's generation, then write_champion), so of two runs
promoting at once exactly one write wins (a generation precondition on GCS, a lock and a content check
on a local root). Every record written is also kept in the append-only history,
``<root>/champion-history/<time>-<run>.json`` (one object per entry, created, never rewritten).

Model copies (``models/<run>/``, ``models/champion/``) carry a manifest, written last: the run and each
file's size and SHA-256. A folder whose files do not match its manifest (a copy killed half-way) is not a
model: read_model_copy refuses it, and the next promotion repairs ``models/champion/``. ``models/<run>/``
is written once (create-only writes) and never replaced: what a record names stays what it named.
Records store the model's path relative to the root (older ones an absolute URI, read as it is).
TensorFlow-free.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import hashlib
import json
import os
import re
import socket
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from trainboard import layout, storage
from trainboard.artifacts.record_fields import record_problem
from trainboard.checks import printable
from trainboard.errors import UsageError
from trainboard.faults import fault_pause
from trainboard.invocation import command

# Each model copy's manifest, written after its files: a folder without it (or not matching it) is not whole.
MANIFEST = "trainboard_manifest.json"


class ChampionRecordError(ValueError):
    """The champion record (or a history entry: ``uri``) cannot be read; nothing was written."""

    def __init__(self, message: str, uri: str):
        super().__init__(message)
        self.uri = uri


@dataclass
class ChampionRecord:
    run: str
    model_uri: str  # relative to the root (models/<run>); an absolute URI in older records
    metrics: dict[str, float]
    promoted_at: str  # ISO 8601, UTC
    reason: str
    previous: str = ""  # the champion's run before this record ("" for the first)
    by: str = ""  # who wrote it: user@host
    action: str = "promote"  # promote, force (force_promote) or rollback
    p_value: float | None = None  # McNemar's test against the previous champion, where it was counted

    @property
    def accuracy(self) -> float:
        return self.metrics["test_accuracy"]

    def model_in(self, root: str) -> str:
        """Where the record's model is: its relative path under ``root``, an old absolute one as it is."""
        if storage.is_gcs(self.model_uri) or Path(self.model_uri).is_absolute():
            return self.model_uri
        return storage.join(root, self.model_uri)


def parse_record(data: bytes, uri: str) -> ChampionRecord:
    """The record in ``data``, or ChampionRecordError naming what is wrong and how to recover."""
    try:
        fields = json.loads(data)
        problem = record_problem(fields, [f.name for f in dataclasses.fields(ChampionRecord)])
        if problem:
            raise ValueError(problem)
        record = ChampionRecord(**fields)
    except ValueError as e:
        raise ChampionRecordError(
            f"{uri} is not a valid champion record ({e}); nothing was overwritten. "
            f"Repair the records ({command('champion repair --root ROOT')}: the record written again from "
            "the history, damaged history entries moved aside), or restore the file by hand",
            uri,
        ) from None
    return record


def read_champion(root: str) -> tuple[ChampionRecord | None, int]:
    """The current record (None when there is none) and its generation, for write_champion."""
    uri = layout.champion_record(root)
    data, generation = storage.read_versioned(uri)
    return (parse_record(data, uri) if data is not None else None), generation


def check_records(root: str, run: str = "") -> None:
    """Before any work: champion.json and every history entry are records (UsageError naming the damaged
    file and the command that repairs it), and, with ``run``, no record names that run yet: a promoted
    run's name and model are final, so a run of that name would be measured, and reported, as another."""
    try:
        record, _ = read_champion(root)
        history = read_history(root)
    except ChampionRecordError as e:
        name = e.uri[len(root.rstrip("/")) + 1 :] if e.uri.startswith(root) else e.uri
        raise UsageError(name, str(e).replace("--root ROOT", f"--root {root}")) from None
    named = [r for r in [*history, *([record] if record else [])] if r.run == run]
    if run and named:
        raise UsageError(
            "run_name",
            f"run {run} was promoted before ({history_entry(root, named[0])}): a promoted run's name and "
            "model are final, never trained again; give this run another name",
        )
    # A promoted run whose history entry was moved aside (champion repair) still has its published model.
    published = layout.model_dir(root, run) if run else ""
    if published and storage.list_files(published):
        raise UsageError(
            "run_name",
            f"run {run} has a published model ({published}), as a promoted run has, though no record "
            "names it: a promoted run's name and model are final, never trained again; give this run "
            "another name",
        )


def write_champion(root: str, record: ChampionRecord, generation: int) -> None:
    """Replace the record only if it is still at ``generation`` (0: only if there is none);
    storage.PreconditionFailed when another run wrote it in between."""
    data = json.dumps(asdict(record), indent=2).encode()
    storage.write_if_generation(layout.champion_record(root), data, generation)


def who() -> str:
    """user@host of this process, for the history (TRAINBOARD_USER overrides the user)."""
    try:
        user = os.environ.get("TRAINBOARD_USER") or getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry
        user = str(os.getuid())
    return printable(f"{user}@{socket.gethostname()}")  # no control characters into a record


# --- the history -------------------------------------------------------------------------------------------


def history_entry(root: str, record: ChampionRecord) -> str:
    """The history file of ``record``: named by its time and run, so it sorts by time and is the same
    for the same record (written again after a crash, it is found, not duplicated)."""
    stamp = re.sub(r"[^0-9T]", "", record.promoted_at.split("+")[0])
    return storage.join(layout.champion_history_dir(root), f"{stamp}-{record.run}.json")


def record_history(root: str, record: ChampionRecord) -> None:
    """Append ``record`` to the history: create its entry, never overwrite one (already there: done)."""
    with contextlib.suppress(storage.PreconditionFailed):
        storage.write_if_generation(
            history_entry(root, record), json.dumps(asdict(record), indent=2).encode(), 0
        )


def read_history(root: str) -> list[ChampionRecord]:
    """Every record the champion ever had, oldest first."""
    folder = layout.champion_history_dir(root)
    return [
        parse_record(storage.read_bytes(uri), uri)
        for uri in storage.list_files(folder)
        if uri.endswith(".json")
    ]


# --- model copies with a manifest --------------------------------------------------------------------------


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def local_manifest(local_dir: str | Path, run: str) -> dict:
    """The manifest of a local model folder: its run and each file's size and SHA-256."""
    files = {}
    for path in sorted(Path(local_dir).rglob("*")):
        if path.is_file() and path.name != MANIFEST:
            data = path.read_bytes()
            files[path.relative_to(local_dir).as_posix()] = {"size": len(data), "sha256": _digest(data)}
    return {"run": run, "files": files}


def read_manifest(folder: str) -> dict | None:
    data, _ = storage.read_versioned(storage.join(folder, MANIFEST))
    try:
        return json.loads(data) if data is not None else None
    except ValueError:
        return None


def write_manifest(folder: str, manifest: dict) -> None:
    storage.write_bytes(storage.join(folder, MANIFEST), json.dumps(manifest, indent=2).encode())


def _relative(folder: str) -> dict[str, tuple[int, int]]:
    return {rel: v for rel, v in storage.list_versions(folder).items() if rel != MANIFEST}


def matches_manifest(folder: str, manifest: dict | None, digests: bool = False) -> bool:
    """Whether ``folder`` holds exactly the manifest's files at their sizes (and, with ``digests``, their
    SHA-256: reads every byte)."""
    if manifest is None:
        return False
    present = _relative(folder)
    files = manifest["files"]
    if set(present) != set(files) or any(present[rel][0] != f["size"] for rel, f in files.items()):
        return False
    return not digests or all(
        _digest(storage.read_bytes(storage.join(folder, rel))) == f["sha256"] for rel, f in files.items()
    )


class ModelExists(RuntimeError):
    """``models/<run>/`` holds another model: a published model is never replaced."""


def publish_model(local_dir: str | Path, folder: str, run: str) -> None:
    """Copy a trained model to ``folder`` (``models/<run>/``), then its manifest, then check every file
    against it: a record may point there only after this returned.

    Write-once: every file is created only if it does not exist (generation precondition 0 on GCS, an
    exclusive create locally). A folder whose manifest is this model's (an earlier attempt of this task)
    is done; one with another manifest is refused (ModelExists), never replaced. Files without a manifest
    are an attempt killed before it finished: no record points at them, they are replaced."""
    manifest = local_manifest(local_dir, run)
    existing = read_manifest(folder)
    if existing is not None:
        if existing == manifest and matches_manifest(folder, manifest, digests=True):
            return
        raise ModelExists(
            f"{folder} holds another model of run {run} (published {len(existing.get('files', {}))} files "
            "earlier); a published model is never replaced: train under another run name"
        )
    for rel in manifest["files"]:
        source, dest = Path(local_dir, rel), storage.join(folder, rel)
        try:
            storage.upload_new(source, dest)
        except storage.PreconditionFailed:
            if _digest(storage.read_bytes(dest)) != manifest["files"][rel]["sha256"]:
                storage.delete(dest)  # a killed attempt's file, which no record names
                storage.upload_new(source, dest)
        fault_pause("model_copy")
    for rel in set(_relative(folder)) - set(manifest["files"]):  # left by an earlier attempt
        storage.delete(storage.join(folder, rel))
    with tempfile.TemporaryDirectory(prefix="trainboard-manifest-") as scratch:
        written = Path(scratch, MANIFEST)
        written.write_text(json.dumps(manifest, indent=2))
        try:
            storage.upload_new(written, storage.join(folder, MANIFEST))
        except storage.PreconditionFailed:  # another process published in between: its model or ours
            if read_manifest(folder) != manifest:
                raise ModelExists(f"{folder} was published by another process meanwhile") from None
    if not matches_manifest(folder, read_manifest(folder), digests=True):
        raise RuntimeError(f"{folder}: the copied model does not match its manifest")


class IncompleteModel(RuntimeError):
    """A model folder that is not one model, whole (missing its manifest, or files that do not match)."""


def copy_model(source: str, dest: str, run: str) -> None:
    """Make ``dest`` a copy of the model folder ``source``: its manifest first taken away (so no reader
    takes the folder for whole while it changes), the files copied, extra files deleted, the manifest
    written last. A source without a manifest (promoted before manifests) gets one computed from it."""
    manifest = read_manifest(source)
    if manifest is None:
        files = {
            rel: {"size": size, "sha256": _digest(storage.read_bytes(storage.join(source, rel)))}
            for rel, (size, _) in _relative(source).items()
        }
        manifest = {"run": run, "files": files}
    if not manifest["files"] or not matches_manifest(source, manifest):
        raise IncompleteModel(f"{source} is missing or not whole: nothing to copy")
    if read_manifest(dest) == manifest and matches_manifest(dest, manifest):
        return  # whole already
    storage.delete(storage.join(dest, MANIFEST))
    for rel in sorted(manifest["files"]):
        storage.copy_file(storage.join(source, rel), storage.join(dest, rel))
        fault_pause("champion_copy")
    for rel in set(_relative(dest)) - set(manifest["files"]):
        storage.delete(storage.join(dest, rel))
    write_manifest(dest, manifest)


def read_model_copy(folder: str, local_dir: str | Path) -> str:
    """What a reader (serving) does: download ``folder`` and check every file against its manifest; the
    run whose model it is, or IncompleteModel."""
    storage.download_dir(folder, local_dir)
    manifest_path = Path(local_dir, MANIFEST)
    if not manifest_path.is_file():
        raise IncompleteModel(f"{folder}: no {MANIFEST}: a copy is in progress or was cut short")
    manifest = json.loads(manifest_path.read_text())
    found = local_manifest(local_dir, manifest["run"])
    if found != manifest:
        raise IncompleteModel(f"{folder}: the files do not match {MANIFEST}: not one model, whole")
    return manifest["run"]


def champion_model_problem(root: str) -> str | None:
    """Why the champion record's model cannot be read (missing, or not matching its manifest), with the
    ways out; None when there is no champion or its model is there. Cheap: a listing and the manifest."""
    record, _ = read_champion(root)
    if record is None:
        return None
    model = record.model_in(root)
    manifest = read_manifest(model)
    if not storage.list_files(model):
        what = "is missing"
    elif manifest is not None and not matches_manifest(model, manifest):
        what = "does not match its manifest (a file missing or cut short)"
    else:
        return None
    return (
        f"{layout.champion_record(root)} names champion {record.run} whose model {model} {what}. "
        f"Roll back to an earlier champion (`{command(f'champion rollback --root {root} --to RUN')}`; "
        f"`{command('champion history')}` lists them), or run with force_promote=true to replace it"
    )


def download_champion(root: str, local_dir: str | Path) -> str:
    """What serving should do: download ``models/champion/`` into the empty ``local_dir`` if it is one model,
    whole; while a copy runs (or after one was cut short) the record's own ``model_uri`` instead, checked
    the same way. The run whose model ``local_dir`` holds; IncompleteModel when neither is whole."""
    try:
        return read_model_copy(layout.champion_model_dir(root), local_dir)
    except IncompleteModel:
        pass
    record, _ = read_champion(root)
    if record is None:
        raise IncompleteModel(f"{layout.champion_record(root)}: no champion")
    for path in sorted(Path(local_dir).rglob("*"), reverse=True):  # what the first try downloaded
        path.unlink() if path.is_file() else path.rmdir()
    return read_model_copy(record.model_in(root), local_dir)
