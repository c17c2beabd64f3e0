"""`trainboard serve` against the same SavedModel called in-process: what KServe's server adds.

    .venv/bin/python bench/serve_latency.py [--requests 200] [--batches 16] [--clients 8]

A root whose champion is a small_cnn trained on the demo data (tests/support/serving.py: model a, and b,
a's copy with another head), served by `trainboard serve` on loopback. It prints:
  1 image:  p50 / p99 latency of REQUESTS sequential V1 requests of the run's example test image, against
            calling the export's serving_default in-process on the same bytes, and their ratios;
  batches:  images per second of CLIENTS concurrent clients each sending BATCHES requests of 32 images,
            against CLIENTS threads calling serving_default in-process on the same batches; the ratio;
  promotion: requests that failed while b was promoted and a rolled back under CLIENTS clients (goal 0).
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.support

from tests.support.promotion import metrics_with_accuracy  # noqa: E402
from tests.support.serving import free_port, post, start_serve, stop, two_models  # noqa: E402
from trainboard.admin.rollback import rollback  # noqa: E402
from trainboard.artifacts.serving_export import INPUT_NAME, example_image  # noqa: E402
from trainboard.components.prepare_data.core import prepare_data  # noqa: E402
from trainboard.components.promote.core import promote  # noqa: E402
from trainboard.config import DataConfig, PromotionRule  # noqa: E402

BATCH = 32


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def timed(call: Callable[[], object], repeats: int) -> list[float]:
    call()  # warm
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return seconds


def throughput(call: Callable[[], object], clients: int, batches: int) -> float:
    """Images per second of ``clients`` threads each making ``batches`` calls of BATCH images."""
    call()
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(lambda: [call() for _ in range(batches)]) for _ in range(clients)]:
            future.result()
    return clients * batches * BATCH / (time.perf_counter() - start)


def failures_during_promotion(
    url: str, body: bytes, root: str, models: dict, clients: int
) -> tuple[int, int]:
    """(failed, total) requests of ``clients`` clients while b is promoted and a rolled back."""
    answers: list[tuple[int, str]] = []
    done = threading.Event()

    def client() -> None:
        while not done.is_set():
            status, answer = post(url, body)
            answers.append((status, answer.get("model_version", "")))

    def wait_for(run: str) -> None:
        while not answers or answers[-1][1] != run:
            time.sleep(0.1)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    promote(root, "b", models["b"], metrics_with_accuracy(0.9), rule=PromotionRule())
    wait_for("b")
    rollback(root, "a", reason="bench")
    wait_for("a")
    done.set()
    for t in threads:
        t.join()
    return sum(status != 200 for status, _ in answers), len(answers)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--batches", type=int, default=16)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as work:
        out = Path(work)
        prepare_data(DataConfig("demo"), str(out / "data"))
        a, b = two_models(str(out / "data"), out)
        root = str(out / "root")
        promote(root, "a", a, metrics_with_accuracy(0.5), rule=PromotionRule())
        image = Path(str(example_image(a))).read_bytes()
        signature = tf.saved_model.load(f"{a}/serving/1").signatures["serving_default"]
        port = free_port()
        proc, _ = start_serve(root, port, out / "serve.log")
        try:
            url = f"http://127.0.0.1:{port}/v1/models/champion:predict"
            one = json.dumps({"instances": [{"b64": base64.b64encode(image).decode()}]}).encode()
            batch = json.dumps({"instances": [{"b64": base64.b64encode(image).decode()}] * BATCH}).encode()
            served = timed(lambda: post(url, one), args.requests)
            local = timed(lambda: signature(**{INPUT_NAME: tf.constant([image])}), args.requests)
            served_rate = throughput(lambda: post(url, batch), args.clients, args.batches)
            local_rate = throughput(
                lambda: signature(**{INPUT_NAME: tf.constant([image] * BATCH)}), args.clients, args.batches
            )
            failed, total = failures_during_promotion(url, one, root, {"a": a, "b": b}, args.clients)
        finally:
            stop(proc)
    ms = 1000
    p50s, p50l = statistics.median(served) * ms, statistics.median(local) * ms
    p99s, p99l = percentile(served, 99) * ms, percentile(local, 99) * ms
    print("| measurement | trainboard serve | in-process | ratio |")
    print("|---|---|---|---|")
    one_image = f"1 image, p50 latency ({args.requests} requests)"
    print(f"| {one_image} | {p50s:.1f} ms | {p50l:.1f} ms | {p50s / p50l:.1f} |")
    print(f"| 1 image, p99 latency | {p99s:.1f} ms | {p99l:.1f} ms | {p99s / p99l:.1f} |")
    print(
        f"| batches of {BATCH}, {args.clients} concurrent clients, images/s | {served_rate:.0f} | "
        f"{local_rate:.0f} | {served_rate / local_rate:.2f} |"
    )
    print(f"| requests failed during a promotion and a rollback | {failed} of {total} | | |")


if __name__ == "__main__":
    main()
