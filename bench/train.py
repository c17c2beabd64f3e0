"""Training benchmarks, each a ratio of two setups measured side by side in one run.

    .venv/bin/python bench/train.py [--model mobilenet_v3_small] [--image-size 64] [--pairs 10] [--epochs 3]

One warm model trains in short fits that alternate between two setups (which goes first alternates too,
so a drift of the machine's speed favours neither). On these shared VMs whole epochs stall in steps of
about 2.5 s with the CPU idle (a bare run's epochs measured 2.1 to 10.2 s) and the CPU seconds of
identical epochs vary 3.8-6.6 s; a stall only adds time, so the fastest epoch of each setup is what the
ratios compare, with the median ratio of adjacent pairs printed beside them.

1. Input pipeline: fed from the real Dataset artifact (TFRecords, parallel decode, cache) / fed the same
   model in-memory tensors of the same shape, in images/s. Goal >= 0.95.
2. TensorBoard cost: epochs (train and validation, epoch-end callbacks included) with the streaming
   TensorBoard callback logging into a fake-gcs-server bucket / without. The 3 % goal is below this
   machine's noise, so the callback also keeps account of its own cost: wall seconds in its hooks on the
   training thread plus CPU seconds of its sync thread, per epoch. Goal <= 1.03 on 1 + that / the
   fastest epoch without it.
3. Live delay: seconds from an epoch's end until its epoch_loss is readable in the bucket (median, max).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support

from tests.support.events import scalars
from tests.support.gcs import fake_gcs_command, free_port, wait_for_http
from trainboard import storage
from trainboard.artifacts.dataset import read_info
from trainboard.components.prepare_data.core import prepare_data
from trainboard.components.train.input_pipeline import Epochs, load_split
from trainboard.components.train.models import build_model
from trainboard.config import DataConfig
from trainboard.streaming import StreamingTensorBoard


def compiled_model(name: str, classes: int, size: int) -> keras.Model:
    model = build_model(name, classes, size)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


class EpochClock:
    """Wall and CPU seconds of each epoch, from before every other callback's on_epoch_begin to after
    every other callback's on_epoch_end: wrap a callback list with ``clock.around(callbacks)``."""

    def __init__(self):
        self.epochs: list[tuple[float, float]] = []
        clock = self

        class Start(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                clock.started = (time.perf_counter(), time.process_time())

        class Stop(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                wall, cpu = clock.started
                clock.epochs.append((time.perf_counter() - wall, time.process_time() - cpu))

        self.start, self.stop = Start(), Stop()

    def around(self, callbacks: list) -> list:
        return [self.start, *callbacks, self.stop]


class AccountedTensorBoard(StreamingTensorBoard):
    """The streaming TensorBoard callback keeping account of its own cost in each epoch: wall seconds in
    its hooks on the training thread, and CPU seconds of its sync thread (charged to the epoch it runs
    beside)."""

    HOOKS = ("on_epoch_begin", "on_epoch_end", "on_train_batch_begin", "on_train_batch_end",
             "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end")  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.epoch: int | None = None
        self.spent: dict[int | None, float] = {}
        for name in self.HOOKS:
            setattr(self, name, self._timed(getattr(self, name)))

    def _charge(self, epoch: int | None, seconds: float) -> None:
        self.spent[epoch] = self.spent.get(epoch, 0.0) + seconds

    def _timed(self, hook):
        def timed(*args, **kwargs):
            if hook.__name__ == "on_epoch_begin":
                self.epoch = args[0]
            started = time.perf_counter()
            hook(*args, **kwargs)
            self._charge(self.epoch, time.perf_counter() - started)

        return timed

    def sync(self) -> dict[str, int]:
        epoch, started = self.epoch, time.thread_time()
        try:
            return super().sync()
        finally:
            self._charge(epoch, time.thread_time() - started)

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        self.epoch = None  # the final flush in close() is once per run, not per epoch


@dataclass
class Alternated:
    """Epochs of two setups trained in alternating fits of one warm model."""

    epochs: dict[str, list[tuple[float, float]]]  # setup -> (wall, CPU) seconds of each epoch
    pairs: list[dict[str, tuple[float, float]]]  # per pair: setup -> (wall, CPU) seconds of its fit

    def fastest(self, setup: str) -> float:
        return min(wall for wall, _ in self.epochs[setup])

    def row(self, label: str, a: str, b: str, goal: str) -> tuple[str, str, str]:
        """Fastest epoch of a / of b, with the median pair ratio in wall and in CPU seconds."""
        wall, cpu = (statistics.median(pair[a][i] / pair[b][i] for pair in self.pairs) for i in (0, 1))
        note = (
            f"{goal}{'; ' if goal else ''}{self.fastest(a):.2f} / {self.fastest(b):.2f} s, best of "
            f"{len(self.epochs[a])} epochs each; median pair {wall:.3f} wall, {cpu:.3f} CPU"
        )
        return label, f"{self.fastest(a) / self.fastest(b):.3f}", note


def alternate(
    model: keras.Model, setups: dict[str, Callable[[int], dict]], pairs: int, epochs: int
) -> Alternated:
    """``epochs`` epochs of each setup per pair; ``setups[name](pair)`` gives that fit's arguments."""
    result = Alternated({name: [] for name in setups}, [])
    for pair in range(pairs):
        seconds = {}
        for name in list(setups) if pair % 2 == 0 else list(setups)[::-1]:
            fit_args = setups[name](pair)
            callbacks = fit_args.pop("callbacks", [])
            clock = EpochClock()
            model.fit(**fit_args, epochs=epochs, verbose=0, callbacks=clock.around(callbacks))
            for callback in callbacks:
                callback.close()
            result.epochs[name] += clock.epochs
            seconds[name] = (sum(w for w, _ in clock.epochs), sum(c for _, c in clock.epochs))
        result.pairs.append(seconds)
    return result


class BucketWatcher(threading.Thread):
    """Polls the run's train event files in the bucket; records when each epoch_loss step appears."""

    def __init__(self, run_dir: str):
        super().__init__(daemon=True)
        self.run_dir, self.seen, self.stop = run_dir, {}, threading.Event()

    def run(self):
        while not self.stop.is_set():
            for uri in storage.list_files(storage.join(self.run_dir, "train")):
                if ".tfevents." in uri:
                    for step, _ in scalars(storage.read_bytes(uri), "epoch_loss"):
                        self.seen.setdefault(step, time.perf_counter())
            time.sleep(0.02)


class EpochEnds(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times: dict[int, float] = {}

    def on_epoch_end(self, epoch, logs=None):
        self.times[epoch] = time.perf_counter()


def live_delays(
    model: keras.Model, data: tf.data.Dataset, epochs: int, run_dir: str, logs: str
) -> list[float]:
    """(3): seconds from each epoch's end until its epoch_loss is in the bucket."""
    ends, watcher = EpochEnds(), BucketWatcher(run_dir)
    tensorboard = StreamingTensorBoard(logs, run_dir, sync_seconds=10)
    watcher.start()
    model.fit(data, epochs=epochs, verbose=0, callbacks=[ends, tensorboard])
    tensorboard.close()
    time.sleep(0.5)
    watcher.stop.set()
    watcher.join()
    return [watcher.seen[e] - ends.times[e] for e in ends.times if e in watcher.seen]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v3_small")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--pairs", type=int, default=10, help="pairs of fits per comparison")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per fit")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs: at least 2 (the first epoch of a fit also writes the model graph)")

    port = free_port()
    server = subprocess.Popen(fake_gcs_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"http://127.0.0.1:{port}/storage/v1/b", proc=server)
        storage.gcs.client().create_bucket("bench")
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = str(Path(tmp) / "data")
            with contextlib.redirect_stdout(sys.stderr):  # its progress events: stdout is the results
                prepare_data(DataConfig("demo"), data_dir)
            info = read_info(data_dir)
            classes, size, batch = len(info.class_names), args.image_size, args.batch_size
            n = info.examples["train"]
            artifact = load_split(data_dir, "train", size, batch, shuffled=Epochs(0))
            validation = load_split(data_dir, "validation", size, batch)
            rng = np.random.default_rng(0)
            images = rng.uniform(0, 255, (n, size, size, 3)).astype("float32")
            in_memory = (
                tf.data.Dataset.from_tensor_slices((images, rng.integers(0, classes, n)))
                .batch(batch)
                .cache()
                .prefetch(tf.data.AUTOTUNE)
            )
            model = compiled_model(args.model, classes, size)
            for warm in (in_memory, artifact):  # tracing, cache filling
                model.fit(warm, validation_data=validation, epochs=1, verbose=0)

            logged: list[AccountedTensorBoard] = []

            def tensorboard(pair: int) -> dict:
                logs, run_dir = str(Path(tmp) / f"cost{pair}"), f"gs://bench/r/tensorboard/cost{pair}"
                logged.append(AccountedTensorBoard(logs, run_dir, sync_seconds=10))
                return {"x": artifact, "validation_data": validation, "callbacks": [logged[-1]]}

            # (2) first, with nothing else in the process (the watcher of (3) polls from a thread).
            without = {"x": artifact, "validation_data": validation}
            cost = alternate(
                model, {"with": tensorboard, "without": lambda _: without}, args.pairs, args.epochs
            )
            feed = alternate(
                model, {"artifact": lambda _: {"x": artifact}, "in memory": lambda _: {"x": in_memory}},
                args.pairs, args.epochs,
            )  # fmt: skip
            run_dir, logs = "gs://bench/r/tensorboard/live", str(Path(tmp) / "live")
            delays = live_delays(
                compiled_model(args.model, classes, size), artifact, args.epochs, run_dir, logs
            )
    finally:
        server.terminate()
        server.wait(10)
    # A fit's first epoch also writes the model graph: once per run (a nightly run is one fit).
    per_epoch = [tb.spent.get(e, 0.0) for tb in logged for e in range(1, args.epochs)]
    first = statistics.median(tb.spent.get(0, 0.0) for tb in logged)
    spent = statistics.median(per_epoch)
    rows = [
        (
            "TensorBoard + streaming: 1 + its own cost / epoch",
            f"{1 + spent / cost.fastest('without'):.3f}",
            f"<= 1.03; {spent * 1000:.0f} ms (max {max(per_epoch) * 1000:.0f}) of a "
            f"{cost.fastest('without'):.2f} s epoch; first epoch {first * 1000:.0f} ms",
        ),
        cost.row("TensorBoard + streaming / without, timed", "with", "without", ""),
        # a throughput ratio: seconds in memory / seconds from the artifact
        feed.row("input pipeline: artifact / in-memory throughput", "in memory", "artifact", ">= 0.95"),
        (
            "epoch end -> epoch_loss in the bucket",
            f"{statistics.median(delays):.3f} s",
            f"median; max {max(delays):.3f} s",
        ),
    ]
    print(f"{args.model} at {args.image_size}px, batch {args.batch_size}, {n} demo images, CPU:")
    for label, value, note in rows:
        print(f"  {label:50} {value:>7}  ({note})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
