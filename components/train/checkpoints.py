"""Checkpoints that make a restart exact.

A restart (preempted node, KFP retry) resumes from the last committed epoch. The commit, written after the
epoch's logs reached the bucket, records the length of every event file there; on restart, whatever the
killed attempt wrote past the commit is cut off, so the resumed series has no gap and no repeated step.
The checkpoint holds the weights, BatchNorm's statistics and the optimizer's variables (its step count
too: BaseOptimizer.save_own_variables stores every optimizer variable, keras/src/optimizers/
base_optimizer.py, Keras 3.15.1, and load_model restores them with the compiled model); what it does not
hold, the random state of the layers, EpochSeeds sets from the epoch's number, and
the input pipeline draws each epoch's order and augmentation from it too (input_pipeline.py): a resumed
epoch trains as it would have in one go.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np

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


class EpochSeeds(keras.callbacks.Callback):
    """At each epoch's start, every random layer's SeedGenerator (Dropout's masks) set from the run's seed,
    the layer's place and the epoch: the same draws in that epoch whether the run got there in one go or
    was resumed before it. A .keras file keeps no SeedGenerator: Layer.save_own_variables stores only the
    trainable and non-trainable variables, not the generators' state (keras/src/layers/layer.py, Keras
    3.15.1), and a loaded layer's generator starts from a new seed (SeedGenerator.__init__ draws
    make_default_seed(), keras/src/random/seed_generator.py)."""

    def __init__(self, seed: int, steps_per_epoch: int):
        super().__init__()
        self.seed, self.steps_per_epoch = seed, steps_per_epoch

    def on_epoch_begin(self, epoch, logs=None):
        generators = [g for layer in self.model._flatten_layers() for g in layer._seed_generators]
        for place, generator in enumerate(generators):  # the state: [seed, draws so far], uint32 in TF
            state = [(self.seed + 7919 * place) % 2**32, (epoch * self.steps_per_epoch) % 2**32]
            generator.state.assign(np.array(state).astype(generator.state.dtype))
