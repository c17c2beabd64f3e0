"""Checkpoints that make a restart exact.

A restart (preempted node, KFP retry) resumes from the last committed epoch. The commit, written after the
epoch's logs reached the bucket, records the length of every event file there; on restart, whatever the
killed attempt wrote past the commit is cut off, so the resumed series has no gap and no repeated step.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import keras

from trainboard import faults, storage
from trainboard.artifacts.training_state import STATE_FILE, TrainingState
from trainboard.streaming import StreamingTensorBoard

# The seconds each epoch spent training (from its start to its validation), in state.json's history: the
# throughput promote plots (trainboard.artifacts.model.steady_images_per_second).
TRAIN_SECONDS = "train_seconds"


class CommitEpoch(keras.callbacks.Callback):
    """After each epoch's logs are in the bucket: save the model there, then commit state.json (with the
    epoch's training time, TRAIN_SECONDS)."""

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
        self.started = time.monotonic()
        self.trained: float | None = self.started  # None while an epoch trains

    def on_epoch_begin(self, epoch, logs=None):
        self.started, self.trained = time.monotonic(), None

    def on_test_begin(self, logs=None):  # fit's validation: the epoch's training is over
        if self.trained is None:
            self.trained = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        train_seconds = (self.trained or time.monotonic()) - self.started
        name = f"epoch-{epoch + 1:04d}.keras"
        local = self.scratch / name
        self.model.save(local)
        storage.upload_file(local, storage.join(self.checkpoint_dir, name))
        local.unlink()
        faults.fault_pause("checkpoint")
        previous = self.state.checkpoint
        for key, value in (logs or {}).items():
            self.state.history.setdefault(key, []).append(float(value))
        self.state.history.setdefault(TRAIN_SECONDS, []).append(round(train_seconds, 4))
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
