"""Training benchmarks, each a ratio of two setups measured side by side (alternating) in one run.

    .venv/bin/python bench/train.py [--model mobilenet_v3_small] [--image-size 64] [--pairs 10] [--repeats 2]

1. Input pipeline: images/s fed from the real Dataset artifact (TFRecords, parallel decode, cache) over
   images/s on the same model fed in-memory tensors of the same shape, fastest epochs (see 2 for why),
   median over repeats. Goal >= 0.95.
2. TensorBoard cost: seconds per epoch (train and validation, epoch-end callbacks included) with the
   streaming TensorBoard callback logging into a fake-gcs-server bucket, over the same without it. One
   warm model trains in short fits that alternate between the two setups; each adjacent pair gives a
   ratio (so a drift of the machine's speed cancels out). Goal <= 1.03 on the fastest epoch of each
   setup: on a shared VM, whole epochs stall in steps of about 2.5 s with the CPU idle (a bare run's
   epochs measured 2.1 to 10.2 s), and a stall can only add time, so the best epoch is the cost of the
   work. The median pair ratio in CPU seconds of the process and in wall seconds are printed beside it.
3. Live delay: seconds from an epoch's end until its epoch_loss is readable in the bucket (median, max).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import fake_gcs_command, free_port, wait_for_http
from events import scalars

from trainboard import storage
from trainboard.components.prepare_data.core import prepare_data
from trainboard.components.train.models import build_model
from trainboard.components.train.streaming import StreamingTensorBoard
from trainboard.dataset_artifact import load_split, read_info


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

    def total(self) -> tuple[float, float]:
        return sum(e[0] for e in self.epochs), sum(e[1] for e in self.epochs)


@dataclass
class Cost:
    wall_ratios: list[float] = field(default_factory=list)  # one per pair of fits: with / without
    cpu_ratios: list[float] = field(default_factory=list)
    epochs: dict[bool, list[float]] = field(default_factory=lambda: {True: [], False: []})  # wall, by setup


def tensorboard_cost(
    model: keras.Model, train: tf.data.Dataset, validation: tf.data.Dataset, pairs: int, epochs: int, tmp: str
) -> Cost:
    """Fits alternating with the streaming TensorBoard and without, on one warm model."""
    model.fit(train, validation_data=validation, epochs=1, verbose=0)  # warm: tracing, cache filling
    cost = Cost()
    for pair in range(pairs):
        seconds = {}
        for logged in (True, False) if pair % 2 else (False, True):
            clock, callbacks = EpochClock(), []
            if logged:
                run_dir = f"gs://bench/r/tensorboard/cost{pair}"
                callbacks = [StreamingTensorBoard(str(Path(tmp) / f"cost{pair}"), run_dir, sync_seconds=10)]
            model.fit(
                train, validation_data=validation, epochs=epochs, verbose=0, callbacks=clock.around(callbacks)
            )
            for tensorboard in callbacks:
                tensorboard.close()
            seconds[logged] = clock.total()
            cost.epochs[logged] += [wall for wall, _ in clock.epochs]
        cost.wall_ratios.append(seconds[True][0] / seconds[False][0])
        cost.cpu_ratios.append(seconds[True][1] / seconds[False][1])
    return cost


def seconds_per_epoch(model: keras.Model, data: tf.data.Dataset, epochs: int) -> float:
    """Wall seconds of the fastest epoch after a first, warm-up epoch (tracing, cache filling)."""
    clock = EpochClock()
    model.fit(data, epochs=epochs + 1, verbose=0, callbacks=clock.around([]))
    return min(wall for wall, _ in clock.epochs[1:])


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v3_small")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3, help="measured epochs per setup (after a warm-up)")
    parser.add_argument("--repeats", type=int, default=2, help="repeats of (1) and (3)")
    parser.add_argument("--pairs", type=int, default=10, help="pairs of fits compared in (2)")
    args = parser.parse_args(argv)

    port = free_port()
    server = subprocess.Popen(fake_gcs_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"http://127.0.0.1:{port}/storage/v1/b", proc=server)
        storage._client().create_bucket("bench")
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = str(Path(tmp) / "data")
            prepare_data("demo", data_dir)
            info = read_info(data_dir)
            classes, size, batch = len(info.class_names), args.image_size, args.batch_size
            artifact = load_split(data_dir, "train", size, batch, shuffle_seed=0)
            rng = np.random.default_rng(0)
            n = info.examples["train"]
            synthetic = (
                tf.data.Dataset.from_tensor_slices(
                    (rng.uniform(0, 255, (n, size, size, 3)).astype("float32"), rng.integers(0, classes, n))
                )
                .batch(batch)
                .cache()
                .prefetch(tf.data.AUTOTUNE)
            )
            validation = load_split(data_dir, "validation", size, batch)
            # (2) first, with nothing else in the process (the watcher of (3) polls from a thread).
            cost = tensorboard_cost(
                compiled_model(args.model, classes, size), artifact, validation, args.pairs, args.epochs, tmp
            )
            input_ratio, delays = [], []
            for repeat in range(args.repeats):
                fed = seconds_per_epoch(compiled_model(args.model, classes, size), artifact, args.epochs)
                ideal = seconds_per_epoch(compiled_model(args.model, classes, size), synthetic, args.epochs)
                input_ratio.append(ideal / fed)
                # (3) a fresh model with the streaming TensorBoard, its bucket watched.
                run_dir = f"gs://bench/r/tensorboard/live{repeat}"
                ends, watcher = EpochEnds(), BucketWatcher(run_dir)
                tensorboard = StreamingTensorBoard(str(Path(tmp) / f"live{repeat}"), run_dir, sync_seconds=10)
                watcher.start()
                compiled_model(args.model, classes, size).fit(
                    artifact, epochs=args.epochs, verbose=0, callbacks=[ends, tensorboard]
                )
                tensorboard.close()
                time.sleep(0.5)
                watcher.stop.set()
                watcher.join()
                delays += [watcher.seen[e] - ends.times[e] for e in ends.times if e in watcher.seen]
    finally:
        server.terminate()
        server.wait(10)

    print(f"{args.model} at {args.image_size}px, batch {args.batch_size}, {n} demo images, CPU, medians:")
    rows = [
        (
            "input pipeline: artifact / in-memory throughput",
            f"{statistics.median(input_ratio):.3f}",
            ">= 0.95",
        ),
        (
            "TensorBoard + streaming / without: fastest epochs",
            f"{min(cost.epochs[True]) / min(cost.epochs[False]):.3f}",
            f"<= 1.03; {min(cost.epochs[True]):.2f} / {min(cost.epochs[False]):.2f} s, "
            f"best of {len(cost.epochs[True])} each",
        ),
        (
            "the same, CPU seconds of the process, median pair",
            f"{statistics.median(cost.cpu_ratios):.3f}",
            f"range {min(cost.cpu_ratios):.3f}-{max(cost.cpu_ratios):.3f}",
        ),
        (
            "the same, wall seconds, median pair",
            f"{statistics.median(cost.wall_ratios):.3f}",
            f"range {min(cost.wall_ratios):.3f}-{max(cost.wall_ratios):.3f}: host stalls",
        ),
        (
            "epoch end -> epoch_loss in bucket, s (median)",
            f"{statistics.median(delays):.3f}",
            f"max {max(delays):.3f}",
        ),
    ]
    for label, value, note in rows:
        print(f"  {label:50} {value:>7}  ({note})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
