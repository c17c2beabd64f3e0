"""train: fit a Keras classifier on the Dataset artifact, streaming TensorBoard logs to the root while it
trains, committing a checkpoint every epoch and resuming from the last one when the task is restarted."""

from __future__ import annotations

import logging
import math
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import keras
import tensorflow as tf

from trainboard import layout, storage, task_events
from trainboard.artifacts.dataset import read_info
from trainboard.artifacts.model import ModelInfo, save_model, steady_images_per_second
from trainboard.artifacts.training_state import (
    StopRecord,
    TrainingState,
    check_same_start,
    damaged_checkpoint,
    load_state,
    started_with,
)
from trainboard.checks import check_run_name
from trainboard.component_image import IMAGE
from trainboard.components.train import multiworker_keras
from trainboard.components.train.checkpoints import TRAIN_SECONDS, CommitEpoch, roll_back_logs
from trainboard.components.train.cluster_spec import worker_index
from trainboard.components.train.devices import check_gpus
from trainboard.components.train.input_pipeline import fit_split, load_split, worker_share
from trainboard.components.train.models import build_model, set_trainable, synchronize_batch_norm
from trainboard.components.train.phases import Phase, phases
from trainboard.components.train.race import Race, champion_curve
from trainboard.components.train.summaries import write_note, write_run_summaries
from trainboard.config import TrainingConfig
from trainboard.config_checks import check_config
from trainboard.roots import check_root
from trainboard.streaming import StreamingTensorBoard
from trainboard.weights import NONE, local_weights

log = logging.getLogger(__name__)
EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
# Debugging: copy this attempt's local TensorBoard logs (a temporary folder) to this directory at the end.
KEEP_LOGS_ENV = "TRAINBOARD_KEEP_LOGS"
# Debugging and tests: the workers other than the chief write under DIR/worker-<index>/ (kept) instead of
# a temporary folder.
THROWAWAY_ENV = "TRAINBOARD_WORKER_THROWAWAY"


def _strategy(workers: int) -> tf.distribute.Strategy:
    """Several workers: MultiWorkerMirroredStrategy (from TF_CONFIG, which components/train/worker.py
    sets), created before anything else of TensorFlow runs, as it requires. One: MirroredStrategy over
    every visible GPU; on CPU the default strategy: a one-replica MirroredStrategy measured 2x slower per
    step there (small_cnn, 2 cores) for nothing in return."""
    if workers > 1:
        multiworker_keras.apply()
        return tf.distribute.MultiWorkerMirroredStrategy()
    if tf.config.list_physical_devices("GPU"):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _precision(choice: str) -> str:
    if choice != "auto":
        return choice
    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "float32"


def _compile(model: keras.Model, config: TrainingConfig, phase: Phase, steps_per_epoch: int) -> None:
    """A fresh optimizer for the phase (after trainable flags changed, Keras needs a compile)."""
    learning_rate = phase.learning_rate
    if config.lr_schedule == "cosine":
        steps = (phase.end - phase.start) * steps_per_epoch
        learning_rate = keras.optimizers.schedules.CosineDecay(phase.learning_rate, decay_steps=steps)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
    )


def _load_checkpoint(root: str, run: str, state: TrainingState, scratch: Path) -> keras.Model:
    uri = storage.join(layout.checkpoint_dir(root, run), state.checkpoint)
    if not state.checkpoint or not storage.exists(uri):
        raise damaged_checkpoint(root, run, state.checkpoint, "is missing")
    local = scratch / state.checkpoint
    local.write_bytes(storage.read_bytes(uri))
    try:
        return keras.models.load_model(local)
    except Exception as e:  # a torn or foreign file: Keras raises ValueError, OSError, zipfile's errors
        raise damaged_checkpoint(root, run, state.checkpoint, f"does not load ({e})") from None


class EpochEvents(keras.callbacks.Callback):
    """An ``epoch`` event (trainboard.task_events) after each epoch is committed: its metrics and wall
    time, the checkpoint included. `trainboard local` prints it as the epoch's one line."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs
        self.started = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        metrics = {name: float(value) for name, value in (logs or {}).items() if name in EPOCH_METRICS}
        seconds = round(time.monotonic() - self.started, 2)
        task_events.emit("epoch", epoch=epoch + 1, epochs=self.epochs, seconds=seconds, **metrics)


def _batch_scalar_frequency(requested: int, steps_per_epoch: int) -> int | str:
    """Keras drops the epoch summaries unless steps per epoch is a multiple of an integer update_freq:
    use the largest divisor of steps_per_epoch not above the request."""
    if not requested:
        return "epoch"
    return max(d for d in range(1, min(requested, steps_per_epoch) + 1) if steps_per_epoch % d == 0)


def _stop_record(state: TrainingState, config: TrainingConfig, gpus: int) -> StopRecord:
    """The race's stop (empty: none) with the time it saved: the epochs not run times the median
    measured epoch training time, and the GPUs that would have run them."""
    if not state.stopped:
        return {}
    seconds = statistics.median(state.history.get(TRAIN_SECONDS) or [0.0])
    return {**state.stopped, "seconds_saved": round((config.epochs - state.epoch) * seconds, 1), "gpus": gpus}


def train(
    dataset_dir: str, model_dir: str, root: str, run: str, config: TrainingConfig, gpus: int = 0
) -> ModelInfo:
    """Train ``config.model`` on ``dataset_dir``; the model goes to ``model_dir``, logs and checkpoints to
    the root. Run again with the same ``run`` after a kill, it resumes from the last completed epoch.
    ``gpus``: how many the task asked for; with none visible it stops before any work (NoGPU).
    With ``config.workers`` > 1 this is one worker of them (TF_CONFIG): each reads the root, trains on its
    share of the data, and only the chief (worker 0) writes there and to ``model_dir``."""
    check_config(config)
    check_run_name(run)
    root = check_root(root, will_write=True)
    strategy = _strategy(config.workers)
    check_gpus(gpus)
    info = read_info(dataset_dir)
    worker = (worker_index(os.environ.get("TF_CONFIG", "")), config.workers)
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy(_precision(config.precision))
    train_examples, batch_size = worker_share(info.examples["train"], config.batch_size, worker)
    steps_per_epoch = math.ceil(train_examples / batch_size)

    with tempfile.TemporaryDirectory(prefix="trainboard-train-") as scratch_dir:
        scratch = Path(scratch_dir)
        chief = worker[0] == 0
        # The other workers train exactly as the chief (every save and sync too: they take part in the
        # collectives) into a throwaway copy of the root, deleted with the scratch folder.
        throwaway = Path(os.environ.get(THROWAWAY_ENV) or scratch) / f"worker-{worker[0]}"
        out_root = root if chief else str(throwaway / "root")
        model_dir = model_dir if chief else str(throwaway / "model")
        tensorboard_dir = layout.tensorboard_dir(out_root, run)
        checkpoint_dir = layout.checkpoint_dir(out_root, run)
        # Before any epoch: a missing, damaged or mismatched file, or imagenet offline, stops here.
        weights = local_weights(config.weights, config.model, config.image_size, root, scratch=scratch)
        state = load_state(root, run)
        current = started_with(
            config,
            info.source,
            fingerprint=info.fingerprint,
            data=info.extra.get("data_settings"),
            image=IMAGE,
            source_fingerprint=info.extra.get("source_fingerprint", ""),
        )
        check_same_start(state, current, root, run)  # before anything in the root changes
        roll_back_logs(tensorboard_dir, state)
        with strategy.scope():
            if state.epoch:
                log.info("resuming run %s after epoch %d", run, state.epoch)
                model = _load_checkpoint(root, run, state, scratch)
            else:
                model = build_model(config.model, len(info.class_names), config.image_size, weights=weights)
                if config.workers > 1:
                    synchronize_batch_norm(model)
        classes = len(info.class_names)
        train_ds = fit_split(
            strategy, config.workers, dataset_dir, "train", config.image_size, config.batch_size, classes,
            shuffle_seed=config.seed, augment=config.augment,
        )  # fmt: skip
        val_ds = fit_split(
            strategy, config.workers, dataset_dir, "validation", config.image_size, config.batch_size, classes
        )
        logs = scratch / "logs"
        if state.epoch:  # a retry or restart: the TensorBoard series says where and why it goes on
            state.attempt += 1
            note = (
                f"attempt {state.attempt}: resumed after epoch {state.epoch} of {config.epochs}; epoch "
                f"{state.epoch + 1} is trained again from its start"
            )
            write_note(logs, "resume", note, step=state.epoch)
        else:
            state.started_with = current
            hparams = {**asdict(config), "dataset": info.source}
            sample_ds = load_split(
                dataset_dir, "train", config.image_size, 16, config.seed, config.augment, cache=False
            )
            samples = next(iter(sample_ds))
            write_run_summaries(
                logs, run, hparams, (samples[0].numpy(), samples[1].numpy()), info.class_names
            )
        tensorboard = StreamingTensorBoard(
            str(logs),
            tensorboard_dir,
            config.sync_seconds,
            update_freq=_batch_scalar_frequency(config.batch_scalars_every, steps_per_epoch),
            histogram_freq=1 if config.histograms else 0,
            profile_batch=config.profile_batches or 0,
        )
        commit = CommitEpoch(checkpoint_dir, scratch, tensorboard, state)
        race = Race(logs, champion_curve(root, run), config, classes, state)
        run_phases = phases(config)
        for phase in run_phases:
            if state.epoch >= phase.end or state.stopped:  # a stopped run stays stopped when resumed
                continue
            if state.epoch == phase.start:  # the phase begins now (a resumed one has its optimizer saved)
                with strategy.scope():
                    trainable = (
                        set_trainable(model, phase.frozen, config.fine_tune_layers)
                        if config.weights != NONE
                        else 0
                    )
                    _compile(model, config, phase, steps_per_epoch)
                if len(run_phases) > 1:
                    write_note(logs, "phase", phase.describe(config.model, trainable), step=phase.start)
                log.info("%s", phase.describe(config.model, trainable))
            # The race's verdict before the commit (which records it), the event after the commit.
            callbacks = [tensorboard, race, commit] + ([EpochEvents(config.epochs)] if chief else [])
            if config.early_stopping_patience and phase is run_phases[-1]:
                callbacks.append(
                    keras.callbacks.EarlyStopping(
                        patience=config.early_stopping_patience, restore_best_weights=True
                    )
                )
            tensorboard.initial_step = state.epoch * steps_per_epoch  # batch steps go on across fits
            try:
                model.fit(
                    train_ds,
                    validation_data=val_ds,
                    epochs=phase.end,
                    initial_epoch=state.epoch,
                    callbacks=callbacks,
                    verbose=2,
                )
            finally:
                tensorboard.close()  # also after a failure: every event written so far reaches the bucket
            if state.epoch < phase.end:  # stopped early
                break
        race.close()  # its events were flushed each epoch: a failure above loses none
        keep_logs = os.environ.get(KEEP_LOGS_ENV)
        if keep_logs and chief and logs.is_dir():  # for comparing the bucket with what the trainer wrote
            shutil.copytree(logs, keep_logs, dirs_exist_ok=True)
        result = ModelInfo(
            model=config.model,
            image_size=config.image_size,
            class_names=info.class_names,
            epochs=state.epoch,
            best_val_accuracy=max(state.history.get("val_accuracy", [0.0])),
            run=run,
            log_bytes=sum(tensorboard.mirror.lengths().values()),
            log_bytes_uploaded=tensorboard.mirror.bytes_uploaded,
            images_per_second=steady_images_per_second(
                info.examples["train"], state.history.get(TRAIN_SECONDS, [])
            ),
            settings=state.started_with,
            class_counts=info.extra.get("per_class", {}),
            image=IMAGE,
            stopped=_stop_record(state, config, gpus),
        )
        save_model(model, result, Path(model_dir))
        return result
