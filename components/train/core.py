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
from dataclasses import asdict, replace
from pathlib import Path

import keras
import tensorflow as tf

from trainboard import layout, storage, task_events
from trainboard.artifacts.dataset import read_info
from trainboard.artifacts.model import ModelInfo, save_model, steady_images_per_second
from trainboard.artifacts.race_stop import RaceStop
from trainboard.artifacts.serving_export import write_example_image
from trainboard.artifacts.training_state import (
    TrainingState,
    check_archive,
    check_same_start,
    damaged_checkpoint,
    load_state,
    started_with,
)
from trainboard.checks import check_run_name
from trainboard.component_image import IMAGE
from trainboard.components.train import multiworker_keras
from trainboard.components.train.attempt import Attempt
from trainboard.components.train.checkpoints import TRAIN_SECONDS, CommitEpoch, EpochSeeds, roll_back_logs
from trainboard.components.train.cluster_spec import worker_index
from trainboard.components.train.devices import check_gpus
from trainboard.components.train.input_pipeline import Epochs, fit_split, load_split, worker_share
from trainboard.components.train.live_feeds import live_feeds
from trainboard.components.train.models import build_model, synchronize_batch_norm
from trainboard.components.train.phases import TrainingEpochs, train_phases
from trainboard.components.train.race import Race, champion_curve
from trainboard.components.train.sibling_race import SiblingRace
from trainboard.components.train.summaries import write_note, write_run_summaries
from trainboard.config import TrainingConfig
from trainboard.config_checks import check_config
from trainboard.roots import check_root
from trainboard.streaming import StreamingTensorBoard
from trainboard.weights import local_weights

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


def _load_checkpoint(attempt: Attempt, state: TrainingState) -> keras.Model:
    """The checkpoint ``state`` names, loaded once it is known to be of this run's model, image size and
    classes."""
    root, run, scratch, config = attempt.root, attempt.run, attempt.scratch, attempt.config
    uri = storage.join(layout.checkpoint_dir(root, run), state.checkpoint)
    if not state.checkpoint or not storage.exists(uri):
        raise damaged_checkpoint(root, run, state.checkpoint, "is missing")
    local = scratch / state.checkpoint
    local.write_bytes(storage.read_bytes(uri))
    # Another architecture or class count would load, then fail in fit with Keras's traceback.
    check_archive(
        root, run, state.checkpoint, str(local),
        model=config.model, image_size=config.image_size, classes=attempt.classes,
    )  # fmt: skip
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


def _stop_record(state: TrainingState, config: TrainingConfig, gpus: int) -> dict:
    """The race's stop (empty: none) with the time it saved: the epochs not run times the median
    measured epoch training time, and the GPUs that would have run them."""
    stop = RaceStop.from_json(state.stopped)
    if stop is None:
        return {}
    seconds = statistics.median(state.history.get(TRAIN_SECONDS) or [0.0])
    saved = round((config.epochs - state.epoch) * seconds, 1)
    return replace(stop, seconds_saved=saved, gpus=gpus).to_json()


def train(
    dataset_dir: str,
    model_dir: str,
    root: str,
    run: str,
    *,
    config: TrainingConfig,
    gpus: int = 0,
    siblings: tuple[str, ...] = (),
) -> ModelInfo:
    """Train ``config.model`` on ``dataset_dir``; the model goes to ``model_dir``, logs and checkpoints to
    the root. Run again with the same ``run`` after a kill, it resumes from the last completed epoch.
    ``gpus``: how many the task asked for; with none visible it stops before any work (NoGPU).
    With ``config.workers`` > 1 this is one worker of them (TF_CONFIG): each reads the root, trains on its
    share of the data, and only the chief (worker 0) writes there and to ``model_dir``. ``siblings``: the
    runs of the night's other trials, which this one races too (sibling_race.py); a single worker's only:
    the workers must stop at the same epoch, and siblings' curves move while they read them."""
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

    with tempfile.TemporaryDirectory(prefix="trainboard-train-") as scratch:
        chief = worker[0] == 0
        # The other workers train exactly as the chief (every save and sync too: they take part in the
        # collectives) into a throwaway copy of the root, deleted with the scratch folder.
        throwaway = Path(os.environ.get(THROWAWAY_ENV) or scratch) / f"worker-{worker[0]}"
        out_root = root if chief else str(throwaway / "root")
        model_dir = model_dir if chief else str(throwaway / "model")
        attempt = Attempt(
            config=config,
            dataset_dir=dataset_dir,
            info=info,
            root=root,
            out_root=out_root,
            run=run,
            scratch=Path(scratch),
            strategy=strategy,
            steps_per_epoch=steps_per_epoch,
            chief=chief,
        )
        model, state = _model_to_train(attempt)
        data = _datasets(attempt)
        _begin_attempt(attempt, state)
        tensorboard = _tensorboard(attempt)
        commit = CommitEpoch(layout.checkpoint_dir(out_root, run), attempt.scratch, tensorboard, state)
        race = Race(attempt.logs, champion_curve(root, run), config, classes=attempt.classes, state=state)
        raced = siblings if config.workers == 1 else ()  # workers must agree: see the docstring
        siblings_race = SiblingRace(root, raced, config, classes=attempt.classes, state=state)
        # The races' verdicts before the commit (which records them), the epoch's event after the commit.
        seeds = EpochSeeds(config.seed, steps_per_epoch)
        callbacks = [seeds, tensorboard, race, siblings_race, commit]
        callbacks += [EpochEvents(config.epochs)] if chief else []
        with live_feeds(run, config.epochs, chief=chief) as feeds:
            train_phases(attempt, model, state, data, tensorboard=tensorboard, callbacks=callbacks + feeds)
        race.close()  # its events were flushed each epoch: a failure above loses none
        keep_logs = os.environ.get(KEEP_LOGS_ENV)
        if keep_logs and chief and attempt.logs.is_dir():  # to compare the bucket with what was written
            shutil.copytree(attempt.logs, keep_logs, dirs_exist_ok=True)
        result = _model_info(attempt, state, tensorboard, gpus)
        save_model(model, result, Path(model_dir))
        write_example_image(attempt.dataset_dir, Path(model_dir))
        return result


def _model_to_train(attempt: Attempt) -> tuple[keras.Model, TrainingState]:
    """The model and the run's state: the last committed epoch's checkpoint on a resume, else a new
    model. Before any epoch, a missing, damaged or mismatched file, or imagenet offline, stops here; the
    logs a killed attempt wrote past its commit are cut off."""
    config, root, run = attempt.config, attempt.root, attempt.run
    weights = local_weights(config.weights, config.model, config.image_size, root, scratch=attempt.scratch)
    state = load_state(root, run)
    check_same_start(state, _started_with(attempt), root, run)  # before anything in the root changes
    roll_back_logs(attempt.tensorboard_dir, state)
    with attempt.strategy.scope():
        if state.epoch:
            log.info("resuming run %s after epoch %d", run, state.epoch)
            return _load_checkpoint(attempt, state), state
        model = build_model(config.model, attempt.classes, config.image_size, weights=weights)
        if config.workers > 1:
            synchronize_batch_norm(model)
    return model, state


def _started_with(attempt: Attempt) -> dict:
    """What this attempt starts with (training_state.started_with): what a resume must match."""
    info = attempt.info
    return started_with(
        attempt.config,
        info.source,
        fingerprint=info.fingerprint,
        data=info.extra.get("data_settings"),
        image=IMAGE,
        source_fingerprint=info.extra.get("source_fingerprint", ""),
    )


def _datasets(attempt: Attempt) -> tuple[TrainingEpochs, tf.data.Dataset]:
    """The training split's epochs (shuffled, augmented as configured: the epochs from..to as fit takes
    them) and the validation split."""
    config = attempt.config
    split = dict(image_size=config.image_size, batch_size=config.batch_size, classes=attempt.classes)

    def train_epochs(start: int, end: int) -> tf.data.Dataset:
        return fit_split(
            attempt.strategy, config.workers, attempt.dataset_dir, "train", **split,
            shuffled=Epochs(config.seed, start, end), augment=config.augment,
        )  # fmt: skip

    val_ds = fit_split(attempt.strategy, config.workers, attempt.dataset_dir, "validation", **split)
    return train_epochs, val_ds


def _begin_attempt(attempt: Attempt, state: TrainingState) -> None:
    """The attempt in the run's TensorBoard series: on a retry or restart, a note of where and why it goes
    on (and the attempt counted); on the first, what it was started with, its hyperparameters and a
    grid of training images."""
    config, logs = attempt.config, attempt.logs
    if state.epoch:
        state.attempt += 1
        note = (
            f"attempt {state.attempt}: resumed after epoch {state.epoch} of {config.epochs}; epoch "
            f"{state.epoch + 1} is trained again from its start"
        )
        write_note(logs, "resume", note, step=state.epoch)
        return
    state.started_with = _started_with(attempt)
    hparams = {**asdict(config), "dataset": attempt.info.source}
    sample_ds = load_split(
        attempt.dataset_dir, "train", config.image_size, 16, shuffled=Epochs(config.seed),
        augment=config.augment, cache=False,
    )  # fmt: skip
    samples = next(iter(sample_ds))
    write_run_summaries(
        logs,
        attempt.run,
        hparams,
        samples=(samples[0].numpy(), samples[1].numpy()),
        class_names=attempt.info.class_names,
    )


def _tensorboard(attempt: Attempt) -> StreamingTensorBoard:
    """Keras's TensorBoard callback, its logs streamed to the run's TensorBoard folder."""
    config = attempt.config
    return StreamingTensorBoard(
        str(attempt.logs),
        attempt.tensorboard_dir,
        config.sync_seconds,
        update_freq=_batch_scalar_frequency(config.batch_scalars_every, attempt.steps_per_epoch),
        histogram_freq=1 if config.histograms else 0,
        profile_batch=config.profile_batches or 0,
    )


def _model_info(
    attempt: Attempt, state: TrainingState, tensorboard: StreamingTensorBoard, gpus: int
) -> ModelInfo:
    """The model's metadata (trainboard_model.json): what was trained on what, how far, how fast, what
    its logs weighed, and the race's stop."""
    config, info = attempt.config, attempt.info
    return ModelInfo(
        model=config.model,
        image_size=config.image_size,
        class_names=info.class_names,
        epochs=state.epoch,
        best_val_accuracy=max(state.history.get("val_accuracy", [0.0])),
        run=attempt.run,
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
