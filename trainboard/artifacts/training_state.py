"""The commit of a run's last completed epoch, ``<root>/checkpoints/<run>/state.json``, and what the run
was started with: a resume must train the same model on the same data, or it would report (and promote)
one model under another's name. Shared by train, which writes and checks it, and `trainboard local`,
which checks it before any work."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from trainboard import layout, storage
from trainboard.checks import hidden_characters, printable
from trainboard.config import DataConfig, TrainingConfig
from trainboard.errors import UsageError
from trainboard.invocation import command

STATE_FILE = "state.json"
# What may change between attempts: how often and how much is logged, not what is trained.
LOGGING_FIELDS = ("sync_seconds", "batch_scalars_every", "histograms", "profile_batches")


@dataclass
class TrainingState:
    epoch: int = 0  # epochs completed
    checkpoint: str = ""  # file name of that epoch's model, beside state.json
    logs: dict[str, int] = field(default_factory=dict)  # event file -> its committed length in the bucket
    history: dict[str, list[float]] = field(default_factory=dict)
    started_with: dict[str, Any] = field(default_factory=dict)  # started_with() of the first attempt
    attempt: int = 1  # the attempt that made this commit (KFP retries, restarts)
    # Why the race stopped it early, as RaceStop.to_json() writes it (race_stop.py); empty: it was not.
    stopped: dict[str, Any] = field(default_factory=dict)


def state_uri(root: str, run: str) -> str:
    return storage.join(layout.checkpoint_dir(root, run), STATE_FILE)


# What of the data settings decides the prepared data (the splits, the images kept); tfds_data_dir is
# only where a cache lives.
DATA_RESULT_FIELDS = ("validation_fraction", "test_fraction", "max_image_pixels")


def data_settings(data: DataConfig) -> dict[str, Any]:
    return {name: getattr(data, name) for name in DATA_RESULT_FIELDS}


def started_with(
    config: TrainingConfig,
    dataset: str,
    *,
    fingerprint: str = "",
    data: dict[str, Any] | None = None,
    image: str = "",
    source_fingerprint: str = "",
) -> dict[str, Any]:
    """What a resume must match, everything that decides the result: the training settings, the data
    source, the split fractions (``data``: data_settings), the prepared data's content fingerprint, the
    source's listing fingerprint (fingerprint_source: a folder's files, sizes and versions, known before
    any data is read) and the component image. A state started before a key was recorded does not
    compare it; an empty fingerprint (not known yet) is not compared either."""
    settings = {k: v for k, v in asdict(config).items() if k not in LOGGING_FIELDS}
    source = {"dataset": dataset, "dataset_fingerprint": fingerprint, "image": image}
    return {**settings, **(data or {}), **source, "source_fingerprint": source_fingerprint}


def _way_out(run: str) -> str:
    return (
        f"start the run over ({command(f'local --restart --run-name {run}')}), or give this one another run "
        "name"
    )


class DamagedState(ValueError):
    """A run's state.json that is not a state: truncated, not JSON, or not a state's fields and types."""


def _problem(name: str, value: Any) -> str | None:
    """What is wrong with the state's field ``name`` (as json.loads read it), None when nothing is."""
    if name in ("epoch", "attempt"):
        least = 0 if name == "epoch" else 1
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= least
        return None if ok else f"is not a whole number {least} or more"
    if name == "checkpoint":  # a file beside state.json, by name
        ok = isinstance(value, str) and "/" not in value and value not in (".", "..")
        return None if ok and not hidden_characters(value) else "is not a file name"
    if not isinstance(value, dict) or any(not isinstance(k, str) or hidden_characters(k) for k in value):
        return "is not an object of names"
    if name == "logs":
        counts = [v for v in value.values() if isinstance(v, int) and not isinstance(v, bool) and v >= 0]
        return None if len(counts) == len(value) else "holds a length that is not a whole number 0 or more"
    if name == "history":
        series = [v for v in value.values() if isinstance(v, list)]
        numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for v in series for x in v)
        whole = len(series) == len(value) and numbers
        return None if whole else "holds a metric that is not a list of numbers"
    return None


def parse_state(data: bytes) -> TrainingState:
    """The state in ``data``, or DamagedState naming the first field that is wrong and how."""
    try:
        fields = json.loads(data)
    except ValueError as e:  # truncated, not JSON, not UTF-8
        raise DamagedState(f"not JSON: {e}") from None
    names = [f.name for f in dataclasses.fields(TrainingState)]
    if not isinstance(fields, dict) or set(fields) - set(names):
        unknown = sorted(set(fields) - set(names)) if isinstance(fields, dict) else []
        raise DamagedState(f"not a state's fields {printable(repr(unknown or type(fields).__name__))}")
    for name, value in fields.items():
        problem = _problem(name, value)
        if problem:
            raise DamagedState(f"{name} {printable(repr(value))[:80]} {problem}")
    return TrainingState(**fields)


def read_state(root: str, run: str) -> TrainingState | None:
    """The run's commit, None when it has none; DamagedState (saying why) when it cannot be read."""
    data, _ = storage.read_versioned(state_uri(root, run))
    return None if data is None else parse_state(data)


def load_state(root: str, run: str) -> TrainingState:
    """The run's commit (a fresh state when it has none); UsageError naming the file when it is damaged."""
    try:
        return read_state(root, run) or TrainingState()
    except DamagedState as e:
        raise UsageError("run_name", f"{state_uri(root, run)} is damaged ({e}); {_way_out(run)}") from None


def check_same_start(state: TrainingState, current: dict[str, Any], root: str, run: str) -> None:
    """UsageError naming every difference when ``state`` was started with other settings or data. An
    empty fingerprint on either side (not known yet: the CLI checks before preparing) is not compared."""
    if not state.epoch:
        return
    differences = [
        f"{name} {before!r} -> {current.get(name)!r}"
        + (" (the data's content changed)" if name.endswith("_fingerprint") else "")
        for name, before in state.started_with.items()
        if current.get(name) != before
        and (not name.endswith("_fingerprint") or (before and current.get(name)))
    ]
    if differences:
        raise UsageError(
            "run_name",
            f"run {run} in {root} was started with other settings or data ({'; '.join(differences)}) and has "
            f"{state.epoch} epoch(s) done: resuming it would mix two models; {_way_out(run)}",
        )


def damaged_checkpoint(root: str, run: str, checkpoint: str, problem: str) -> UsageError:
    uri = storage.join(layout.checkpoint_dir(root, run), checkpoint)
    return UsageError("run_name", f"checkpoint {uri}, which {STATE_FILE} names, {problem}; {_way_out(run)}")


def checkpoint_mismatch(
    archive: str | io.BytesIO, model: str, *, image_size: int | None = None, classes: int | None = None
) -> str:
    """What in the Keras archive ``archive`` differs from a ``model`` for ``image_size`` pixels and
    ``classes`` classes (None: not compared), as the end of "the checkpoint holds ..."; "" when nothing.
    zipfile's and json's errors when it is not a whole Keras archive.

    The archive's layout is Keras's: keras/src/saving/saving_lib.py (Keras 3.15.1) writes the serialized
    model as ``config.json`` at the zip's top, ``{"class_name": ..., "config": {"name": ..., "layers":
    [...]}}``; build_model names the input layer ``image`` (its ``batch_shape``) and the head ``classes``
    (its ``units``). tests/test_train.py checks this on a checkpoint the pinned Keras saved."""
    with zipfile.ZipFile(archive) as opened:
        saved = json.loads(opened.read("config.json")).get("config", {})
    layers = {layer.get("name"): layer.get("config", {}) for layer in saved.get("layers", [])}
    saved_classes = layers.get("classes", {}).get("units")
    saved_size = (layers.get("image", {}).get("batch_shape") or [None, None])[1]
    differences = []
    if saved.get("name") != model:
        differences.append(f"a {saved.get('name')} model, not {model}")
    if classes is not None and saved_classes is not None and saved_classes != classes:
        differences.append(f"a head of {saved_classes} classes, not the {classes} of this run's data")
    if image_size is not None and saved_size is not None and saved_size != image_size:
        differences.append(f"a model of {saved_size}x{saved_size} images, not {image_size}x{image_size}")
    return " and ".join(differences)


def check_checkpoint(
    root: str,
    run: str,
    state: TrainingState,
    model: str,
    *,
    image_size: int | None = None,
    classes: int | None = None,
) -> None:
    """The checkpoint a resume would load, looked at without Keras: there, a whole Keras archive (a zip:
    a truncated one has lost its central directory, at the end), of ``model`` for ``image_size`` pixels
    and ``classes`` classes (checkpoint_mismatch). A gs:// checkpoint is read whole."""
    uri = storage.join(layout.checkpoint_dir(root, run), state.checkpoint)
    if not state.checkpoint or not storage.exists(uri):
        raise damaged_checkpoint(root, run, state.checkpoint, "is missing")
    source = io.BytesIO(storage.read_bytes(uri)) if storage.is_gcs(uri) else uri
    check_archive(root, run, state.checkpoint, source, model=model, image_size=image_size, classes=classes)


def check_archive(
    root: str,
    run: str,
    checkpoint: str,
    archive: str | io.BytesIO,
    *,
    model: str,
    image_size: int | None = None,
    classes: int | None = None,
) -> None:
    """UsageError naming ``checkpoint`` (of ``run``) and what differs when ``archive`` (its bytes) is not
    a whole Keras archive of ``model`` for ``image_size`` and ``classes`` (checkpoint_mismatch)."""
    try:
        mismatch = checkpoint_mismatch(archive, model, image_size=image_size, classes=classes)
    except (zipfile.BadZipFile, KeyError, ValueError, AttributeError, TypeError, IndexError) as e:
        raise damaged_checkpoint(root, run, checkpoint, f"is not a whole Keras model ({e})") from None
    if mismatch:
        raise damaged_checkpoint(root, run, checkpoint, f"holds {mismatch}: it cannot resume this run")


def check_resume(
    root: str,
    run: str,
    config: TrainingConfig,
    data: DataConfig,
    *,
    image: str,
    source_fingerprint: str = "",
    checkpoint: bool = True,
    classes: Callable[[], int | None] | None = None,
) -> None:
    """Before any work, what the train task would refuse after data preparation: a run of this name
    with epochs done resumes only when everything that decides the result is the same (the prepared
    data's fingerprint is compared by train, once known; ``source_fingerprint``, when given, now) and,
    with ``checkpoint``, its checkpoint is whole and of this model, image size and (when known before
    the data is prepared, ``classes()``: called only for a resume) its class count."""
    state = load_state(root, run)
    current = started_with(
        config, data.dataset, data=data_settings(data), image=image, source_fingerprint=source_fingerprint
    )
    check_same_start(state, current, root, run)
    if state.epoch and checkpoint:
        known = classes() if classes else None
        check_checkpoint(root, run, state, config.model, image_size=config.image_size, classes=known)
