"""Training benchmarks, each a ratio of two setups measured side by side (alternating) in one run.

    .venv/bin/python bench/train.py [--model mobilenet_v3_small] [--image-size 64] [--repeats 3]

1. Input pipeline: images/s fed from the real Dataset artifact (TFRecords, parallel decode, cache) over
   images/s on the same model fed in-memory tensors of the same shape. Goal >= 0.95.
2. TensorBoard cost: seconds per epoch with the streaming TensorBoard callback (logging into a
   fake-gcs-server bucket) over seconds per epoch with no callback. Goal <= 1.03.
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


def seconds_per_epoch(
    model: keras.Model, data: tf.data.Dataset, epochs: int, callbacks=()
) -> tuple[float, float]:
    """Median (wall, CPU) seconds of an epoch after a first, warm-up epoch (tracing, cache filling). CPU
    time is that of every thread of this process: what the work cost, whatever else the machine runs."""
    times: list[tuple[float, float]] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = (time.perf_counter(), time.process_time())

        def on_epoch_end(self, epoch, logs=None):
            times.append((time.perf_counter() - self.start[0], time.process_time() - self.start[1]))

    model.fit(data, epochs=epochs + 1, verbose=0, callbacks=[Clock(), *callbacks])
    return statistics.median(t[0] for t in times[1:]), statistics.median(t[1] for t in times[1:])


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
    parser.add_argument("--repeats", type=int, default=2)
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
            input_ratio, overhead_ratio, cpu_ratio, delays = [], [], [], []
            for repeat in range(args.repeats):
                fed = seconds_per_epoch(compiled_model(args.model, classes, size), artifact, args.epochs)[0]
                ideal = seconds_per_epoch(compiled_model(args.model, classes, size), synthetic, args.epochs)[
                    0
                ]
                input_ratio.append(ideal / fed)

                def streamed(name: str, *extra: keras.callbacks.Callback) -> tuple[float, float]:
                    """Seconds per epoch with the streaming TensorBoard callback, into run ``name``."""
                    run_dir = f"gs://bench/r/tensorboard/{name}"
                    tensorboard = StreamingTensorBoard(str(Path(tmp) / name), run_dir, sync_seconds=10)
                    model = compiled_model(args.model, classes, size)
                    seconds = seconds_per_epoch(model, artifact, args.epochs, [*extra, tensorboard])
                    tensorboard.close()
                    return seconds

                # (2) without anything else in the process: the watcher below polls the bucket from a
                # thread of this process and would slow training itself.
                # Alternating which goes first, so a drift of the machine's speed does not favour one.
                setups = [
                    lambda name=f"cost{repeat}": streamed(name),
                    lambda: seconds_per_epoch(
                        compiled_model(args.model, classes, size), artifact, args.epochs
                    ),
                ]
                if repeat % 2:
                    bare, logged = setups[1](), setups[0]()
                else:
                    logged, bare = setups[0](), setups[1]()
                overhead_ratio.append(logged[0] / bare[0])
                cpu_ratio.append(logged[1] / bare[1])
                # (3) a separate run, watched.
                ends, watcher = EpochEnds(), BucketWatcher(f"gs://bench/r/tensorboard/live{repeat}")
                watcher.start()
                streamed(f"live{repeat}", ends)
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
            "TensorBoard + streaming / no callback, s/epoch",
            f"{statistics.median(overhead_ratio):.3f}",
            "<= 1.03",
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
