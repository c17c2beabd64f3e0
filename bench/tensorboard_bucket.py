"""How should the team TensorBoard read the bucket? Both ways, measured side by side on one machine.

    .venv/bin/python bench/tensorboard_bucket.py [--runs 20] [--samples 5] [--idle-seconds 30]

A fake-gcs-server holds RUNS copies of a real Keras run's logs (tests/keras_run.py). Behind a counting
proxy, each way serves them in turn:
  gcsfs   TensorBoard reading gs:// itself (TensorFlow-free, gcsfs, --load_fast=false)
  mirror  the pod of manifests/ (gke overlay, rendered): bucket-mirror sidecar + TensorBoard on the copy
and the script prints, for each: seconds from a new epoch's event file landing in the bucket to its scalar
in TensorBoard's HTTP API (SAMPLES new epochs), storage requests per minute while nothing changes, and the
time to load the dashboard's data (page, run list, tags, epoch_loss of every run).
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.support

from tensorboard.compat.proto import event_pb2, summary_pb2  # noqa: E402
from tensorboard.summary.writer.event_file_writer import EventFileWriter  # noqa: E402

from tests.support.gcs import fake_gcs_command, free_port, wait_for_http  # noqa: E402
from tests.support.local_pod import LocalPod  # noqa: E402

BUCKET = "trainboard-bench"


class CountingProxy(http.server.ThreadingHTTPServer):
    """Forwards every request to the storage server and counts them."""

    def __init__(self, upstream: str):
        self.upstream = urllib.parse.urlparse(upstream)
        self.count = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", free_port()), _ProxyHandler)

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a reader that hung up is not news
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _forward(self) -> None:
        server: CountingProxy = self.server  # type: ignore[assignment]
        with server.lock:
            server.count += 1
        body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        upstream = http.client.HTTPConnection(server.upstream.hostname, server.upstream.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        data = response.read()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        upstream.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

    def log_message(self, *args) -> None:
        pass


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def scalar_steps(tensorboard: str, run: str) -> list[int]:
    query = urllib.parse.urlencode({"run": run, "tag": "epoch_loss"})
    try:
        return [int(p[1]) for p in yaml.safe_load(get(f"{tensorboard}/data/plugin/scalars/scalars?{query}"))]
    except OSError:
        return []


def new_epoch_file(folder: Path, step: int) -> Path:
    """An event file holding one epoch's `epoch_loss`, as a resumed Keras run adds."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = EventFileWriter(str(folder), filename_suffix=f".{step}")
    value = summary_pb2.Summary.Value(tag="epoch_loss", simple_value=1.0 / (step + 1))
    writer.add_event(
        event_pb2.Event(wall_time=time.time(), step=step, summary=summary_pb2.Summary(value=[value]))
    )
    writer.close()
    return next(folder.glob(f"*tfevents*.{step}"))


def measure(name: str, logdir: str, start, proxy: CountingProxy, runs: int, args, work: Path) -> dict:
    from trainboard import storage

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    stop = start(port)
    try:
        wait_for_http(f"{url}/data/runs", timeout=120)
        first = f"run-{runs - 1:02d}/train"
        deadline = time.monotonic() + 300
        while not scalar_steps(url, first) and time.monotonic() < deadline:
            time.sleep(0.5)
        latencies = []
        for i in range(args.samples):
            run = f"run-{i % runs:02d}"
            step = 100 + i
            event = new_epoch_file(work / name / f"epoch-{step}", step)
            started = time.monotonic()
            storage.upload_file(event, f"{logdir}/{run}/train/{event.name}")
            while step not in scalar_steps(url, f"{run}/train"):
                if time.monotonic() - started > 120:
                    raise TimeoutError(f"{name}: step {step} of {run} not shown after 120 s")
                time.sleep(0.2)
            latencies.append(time.monotonic() - started)
        time.sleep(args.reload + 1)  # let the last change settle
        before = proxy.count
        time.sleep(args.idle_seconds)
        idle_per_minute = (proxy.count - before) * 60 / args.idle_seconds
        page_started = time.monotonic()
        get(f"{url}/")
        run_names = yaml.safe_load(get(f"{url}/data/runs"))
        get(f"{url}/data/plugin/scalars/tags")
        for run in run_names:
            scalar_steps(url, run)
        page_load = time.monotonic() - page_started
    finally:
        stop()
    return {
        "latency_median_s": statistics.median(latencies),
        "latency_max_s": max(latencies),
        "idle_requests_per_min": idle_per_minute,
        "page_load_s": page_load,
        "runs": len(run_names),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--samples", type=int, default=5, help="new epochs timed per way")
    parser.add_argument("--idle-seconds", type=float, default=30)
    parser.add_argument("--reload", type=int, default=5, help="TensorBoard's and the mirror's interval")
    args = parser.parse_args()

    import os

    work = Path(tempfile.mkdtemp(prefix="trainboard-bench-"))
    port = free_port()
    gcs_url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(fake_gcs_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proxy = CountingProxy(gcs_url)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        wait_for_http(f"{gcs_url}/storage/v1/b", proc=server)
        os.environ["STORAGE_EMULATOR_HOST"] = gcs_url  # the bench's own uploads are not counted
        from trainboard import storage
        from trainboard.manifests import render

        storage.gcs.client().create_bucket(BUCKET)
        keras = work / "keras"
        subprocess.run(
            [sys.executable, str(REPO / "tests" / "support" / "keras_run.py"), str(keras), "3"],
            check=True,
            capture_output=True,
        )
        reader_env = {"STORAGE_EMULATOR_HOST": proxy.url}
        results = {}
        for name in ("gcsfs", "mirror"):
            logdir = f"gs://{BUCKET}/{name}/tensorboard"
            for i in range(args.runs):
                storage.upload_dir(keras, f"{logdir}/run-{i:02d}")
            if name == "gcsfs":

                def start(port: int, logdir: str = logdir):
                    argv = [
                        sys.executable,
                        "-m",
                        "trainboard.tensorboard_server",
                        f"--logdir={logdir}",
                        f"--port={port}",
                        f"--reload-interval={args.reload}",
                    ]
                    process = subprocess.Popen(
                        argv,
                        env={**os.environ, **reader_env},
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    return lambda: (process.terminate(), process.wait(10))
            else:
                objects = yaml.safe_load_all(render(f"gs://{BUCKET}/{name}", "gke"))
                deployment = next(o for o in objects if o["kind"] == "Deployment")

                def start(port: int, deployment: dict = deployment):
                    shutil.rmtree(work / "pod", ignore_errors=True)
                    pod = LocalPod(deployment, work / "pod", port, env=reader_env)
                    return pod.stop

            results[name] = measure(name, logdir, start, proxy, args.runs, args, work)
            print(f"{name}: {results[name]}", file=sys.stderr, flush=True)
    finally:
        proxy.shutdown()
        server.terminate()
        shutil.rmtree(work, ignore_errors=True)

    gcsfs, mirror = results["gcsfs"], results["mirror"]
    print(
        f"{args.runs} runs, {args.samples} new epochs each way, idle window {args.idle_seconds:.0f} s, "
        f"intervals {args.reload} s"
    )
    print(f"{'':34}{'gcsfs':>10}{'mirror':>10}{'gcsfs/mirror':>14}")
    for key, label in [
        ("latency_median_s", "new epoch -> scalar, median (s)"),
        ("latency_max_s", "new epoch -> scalar, max (s)"),
        ("idle_requests_per_min", "storage requests/min, idle"),
        ("page_load_s", "dashboard data load (s)"),
    ]:
        ratio = gcsfs[key] / mirror[key] if mirror[key] else float("inf")
        print(f"{label:34}{gcsfs[key]:>10.2f}{mirror[key]:>10.2f}{ratio:>14.1f}")


if __name__ == "__main__":
    main()
