"""Checkpoints that make a restart exact.

A restart (preempted node, KFP retry) resumes from the last committed epoch. The commit, written after the
epoch's logs reached the bucket, records the length of every event file there; on restart, whatever the
killed attempt wrote past the commit is cut off, so the resumed series has no gap and no repeated step.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import keras

from trainboard import faults, storage
from trainboard.artifacts.training_state import STATE_FILE, TrainingState
from trainboard.streaming import StreamingTensorBoard


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
        faults.fault_pause("checkpoint")
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
