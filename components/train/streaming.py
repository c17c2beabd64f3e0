"""TensorBoard logs that reach the bucket while training runs, and checkpoints that make a restart exact.

Keras writes event files to a local folder; a DirectoryMirror sends only the new bytes to
``<root>/tensorboard/<run>/`` at every epoch end and at least every ``sync_seconds`` in between.

A restart (preempted node, KFP retry) resumes from the last committed epoch. The commit, written after the
epoch's logs reached the bucket, records the length of every event file there; on restart, whatever the
killed attempt wrote past the commit is cut off, so the resumed series has no gap and no repeated step.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras

from trainboard import storage

log = logging.getLogger(__name__)
STATE_FILE = "state.json"


@dataclass
class TrainingState:
    """The commit of the last completed epoch, at ``<root>/checkpoints/<run>/state.json``."""

    epoch: int = 0  # epochs completed
    checkpoint: str = ""  # file name of that epoch's model, beside state.json
    logs: dict[str, int] = field(default_factory=dict)  # event file -> its committed length in the bucket
    history: dict[str, list[float]] = field(default_factory=dict)


class StreamingTensorBoard(keras.callbacks.TensorBoard):
    """keras.callbacks.TensorBoard writing locally, mirrored to ``target`` while training runs.

    TensorFlow's own gs:// writer re-uploads the whole event file at each flush and cannot reach an
    emulator; mirroring only the new bytes keeps uploads close to the size of the logs.
    """

    def __init__(self, log_dir: str, target: str, sync_seconds: float, initial_step: int = 0, **kwargs):
        super().__init__(log_dir=log_dir, **kwargs)
        self.mirror = storage.DirectoryMirror(Path(log_dir), target)
        self.sync_seconds = sync_seconds
        self.initial_step = initial_step  # batches done before a resume: per-batch steps go on from there
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sync(self) -> dict[str, int]:
        """Flush the writers and mirror what is new; return the mirrored length of each file."""
        with self._lock:
            for writer in self._writers.values():
                writer.flush()  # Keras leaves epoch scalars in the writer's buffer
            self.mirror.sync()
            return self.mirror.lengths()

    def _sync_periodically(self) -> None:
        while True:
            self._wake.wait(self.sync_seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.sync()
            except Exception:  # the next epoch end syncs again; a storage hiccup must not stop training
                log.warning("TensorBoard log sync failed; retrying", exc_info=True)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._global_train_batch = self.initial_step
        self._stop.clear()
        self._thread = threading.Thread(target=self._sync_periodically, name="tensorboard-sync", daemon=True)
        self._thread.start()

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self._wake.set()  # upload now, beside training: the next epoch does not wait for it

    def _close_writers(self):
        # Keras closes the writers at the end of fit; the sync thread must not flush a closed one.
        with self._lock:
            super()._close_writers()
            self._writers.clear()

    def close(self) -> None:
        """Stop the periodic sync, close the writers and send everything: after training or a failure."""
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join()
        self._close_writers()
        self.sync()


class CommitEpoch(keras.callbacks.Callback):
    """After each epoch's logs are in the bucket: save the model there, then commit state.json."""

    def __init__(
        self, checkpoint_dir: str, scratch: Path, tensorboard: StreamingTensorBoard, state: TrainingState
    ):
        super().__init__()
        self.checkpoint_dir, self.scratch, self.tensorboard, self.state = (
            checkpoint_dir,
            scratch,
            tensorboard,
            state,
        )

    def on_epoch_end(self, epoch, logs=None):
        name = f"epoch-{epoch + 1:04d}.keras"
        local = self.scratch / name
        self.model.save(local)
        storage.upload_file(local, storage.join(self.checkpoint_dir, name))
        local.unlink()
        storage.fault_pause("checkpoint")
        previous = self.state.checkpoint
        for key, value in (logs or {}).items():
            self.state.history.setdefault(key, []).append(float(value))
        self.state.epoch, self.state.checkpoint = epoch + 1, name
        self.state.logs = self.tensorboard.sync()
        storage.write_bytes(
            storage.join(self.checkpoint_dir, STATE_FILE), json.dumps(asdict(self.state)).encode()
        )
        if previous:  # only after the new commit: a kill in between leaves the old one usable
            storage.delete(storage.join(self.checkpoint_dir, previous))


def load_state(checkpoint_dir: str) -> TrainingState:
    uri = storage.join(checkpoint_dir, STATE_FILE)
    if not storage.exists(uri):
        return TrainingState()
    return TrainingState(**json.loads(storage.read_bytes(uri)))


def roll_back_logs(tensorboard_dir: str, state: TrainingState) -> None:
    """Cut the run's logs in the bucket back to what ``state`` committed: a killed attempt may have sent
    events of an epoch that is about to be trained again."""
    for uri in storage.list_files(tensorboard_dir):
        rel = uri[len(tensorboard_dir) + 1 :]
        committed = state.logs.get(rel)
        if committed is None:
            storage.delete(uri)
        else:
            storage.truncate(uri, committed)
