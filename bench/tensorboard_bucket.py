"""The team TensorBoard over a year of nightly runs: how should it read the bucket, and what does it need?

    .venv/bin/python bench/tensorboard_bucket.py [--runs 365] [--samples 5] [--idle-seconds 30]

The bucket (a fake-gcs-server, behind a counting proxy) holds a root as RUNS nightly runs leave it: one real
`trainboard local` run (102 classes, --model, --epochs; train / validation / evaluation, the sample-image
grid, hparams, the dataset card, the per-class table and charts) copied under RUNS nightly run names, one
`_trend` point per run (folded as promote folds them: trend.compact_trend), and `models/<run>/` for every
PROMOTE_EVERY-th run (ever champion: kept by the
board's retention). Each way then serves it in turn:
  gcsfs       TensorBoard reading gs:// itself (TensorFlow-free, gcsfs, --load_fast=false), every run
  mirror      the pod of manifests/ (gke overlay, rendered): bucket-mirror sidecar + TensorBoard on its copy,
              with the manifest's retention (--keep-runs)
  mirror-all  the same pod keeping every run (--keep-runs=0), when RUNS is more than the retention
  mirror-N    the same pod keeping N runs (not by default: --ways)
  mirror-python  the pod with TensorBoard's Python loader (--load-fast=false) instead of its Rust one
Both run in the team image's environment (a venv made by the Dockerfile's own pip command: no TensorFlow,
which TensorBoard's profile plugin would otherwise import). The script prints, for each: cold start (the
pod's processes started until TensorBoard lists every run it should), seconds from a new epoch's event file
landing in the bucket to its scalar in TensorBoard's HTTP API (SAMPLES new epochs of tonight's run while it
holds its lease, as a training run does, each at a random moment of the intervals; then SAMPLES rounds of
a new epoch in each of three runs training at once), storage requests per minute and CPU while nothing
changes (no run training), requests per minute while three runs train and write nothing, peak and idle
memory of each container (its processes' peak RSS, summed: an upper bound), the bytes on the mirror's
volume, and the time to load the dashboard's data (page, run list, tags, epoch_loss of every run).
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.support, components

from tensorboard.compat.proto import event_pb2, summary_pb2  # noqa: E402
from tensorboard.summary.writer.event_file_writer import EventFileWriter  # noqa: E402

from tests.support.gcs import fake_gcs_command, free_port, wait_for_http  # noqa: E402
from tests.support.image_env import image_venv  # noqa: E402
from tests.support.local_pod import LocalPod  # noqa: E402
from trainboard import storage  # noqa: E402
from trainboard.app.kustomize import render  # noqa: E402
from trainboard.artifacts import lease  # noqa: E402
from trainboard.components.promote import trend  # noqa: E402

BUCKET = "trainboard-bench"
ROOT = f"gs://{BUCKET}/root"
LOGDIR = f"{ROOT}/tensorboard"
CLASSES = 102  # caltech101's
PROMOTE_EVERY = 10  # a new champion every tenth night
FIRST_NIGHT = datetime(2025, 12, 1, 2, 0, tzinfo=UTC)


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
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.read()


def listed_runs(tensorboard: str) -> set[str]:
    try:
        return set(yaml.safe_load(get(f"{tensorboard}/data/runs")))
    except OSError:
        return set()


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


# --- the processes of a container, from /proc -------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and every descendant (TensorBoard's fast loader is a child process)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo += children.get(tree[-1], [])
    return tree


def memory_mib(pids: list[int], field: str) -> float:
    """The sum of /proc/PID/status ``field`` (VmHWM: peak RSS, VmRSS: now) over ``pids``, in MiB."""
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total += next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith(f"{field}:")), 0
        )
    return total / 1024


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def du_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20 if folder.is_dir() else 0


# --- the bucket -------------------------------------------------------------------------------------------


def reference_run(folder: Path, model: str, epochs: int) -> Path:
    """One run as the pipeline writes it, ``trainboard local`` on CLASSES classes of tiny images: its
    tensorboard/<run>/ folder."""
    run = "20251201-020000-ref"
    logs = folder / "root" / "tensorboard" / run
    if logs.is_dir():
        return logs
    images = folder / "images"
    shutil.rmtree(images, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-c", IMAGE_FOLDER, str(images), str(CLASSES)], check=True, capture_output=True
    )
    argv = [
        str(Path(sys.executable).with_name("trainboard")), "local", f"--dataset=folder:{images}",
        f"--model={model}", "--weights=none", "--image-size=32", f"--epochs={epochs}",
        f"--root={folder / 'root'}", f"--run-name={run}", "--no-serve",
    ]  # fmt: skip
    subprocess.run(argv, check=True, capture_output=True)
    return logs


# CLASSES folders of 6 drawn images each (tests.support.images imports TensorFlow: a child process).
IMAGE_FOLDER = """
import sys
from pathlib import Path
from tests.support.images import make_image_folder
make_image_folder(Path(sys.argv[1]), {"": 6}, classes=[f"class_{i:03d}" for i in range(int(sys.argv[2]))])
"""


def night(i: int) -> str:
    """The i-th nightly run's name, as trainboard.layout.new_run_name makes it."""
    return f"{FIRST_NIGHT + timedelta(days=i):%Y%m%d-%H%M%S}-n{i:04d}"


def bucket_folder(data: Path, reference: Path, runs: int) -> dict[str, int]:
    """fake-gcs-server's -data folder: BUCKET/root as RUNS nights leave it. {what: count}."""
    root = data / BUCKET / "root"
    files = [p for p in reference.rglob("*") if p.is_file()]
    for i in range(runs):
        name = night(i)
        for path in files:
            copy = root / "tensorboard" / name / path.relative_to(reference)
            copy.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, copy)
        # The night's trend point, written by the promote step's own code.
        metrics = {"test_accuracy": 0.80 + 0.15 * i / runs, "test_loss": 0.6 - 0.3 * i / runs}
        trend.record_trend(
            str(root), name, metrics, images_per_second=120.0, champion=metrics, about="bench night"
        )
        if i % PROMOTE_EVERY == 0:
            (root / "models" / name).mkdir(parents=True)
            (root / "models" / name / "model.keras").write_bytes(b"stand-in: the mirror only lists models/")
    # Each point written on its night, then folded as tonight's promote folds them.
    last_night = (FIRST_NIGHT + timedelta(days=runs - 1)).timestamp()
    for point in (root / "tensorboard" / trend.TREND).rglob("*tfevents*"):
        night_time = (FIRST_NIGHT + timedelta(days=int(point.name.split(".")[3]) - 1)).timestamp()
        os.utime(point, (night_time, night_time))
    trend.compact_trend(str(root), now=last_night)
    objects = sum(1 for p in root.rglob("*") if p.is_file())
    trend_files = sum(1 for _ in (root / "tensorboard" / trend.TREND).rglob("*tfevents*"))
    return {
        "objects": objects,
        "files per run": len(files),
        "promoted": len(range(0, runs, PROMOTE_EVERY)),
        "trend files": trend_files,
    }


def expected_runs(reference: Path, runs: int, keep: int) -> set[str]:
    """What TensorBoard should list when it keeps ``keep`` runs (0: all) and every one ever promoted."""
    subruns = {
        p.parent.relative_to(reference).as_posix() for p in reference.rglob("*tfevents*") if p.is_file()
    }
    names = [night(i) for i in range(runs)]
    kept = set(names[-keep:] if keep else names) | set(names[::PROMOTE_EVERY])
    listed = {f"{run}/{sub}" if sub != "." else run for run in kept for sub in subruns}
    return listed | {f"{trend.TREND}/{trend.RUNS}", f"{trend.TREND}/{trend.CHAMPION}"}


# --- the ways ---------------------------------------------------------------------------------------------


@dataclass
class Started:
    stop: Callable[[], object]
    containers: dict[str, int]  # container name -> pid
    volume: Path | None = None


def with_args(deployment: dict, **values: object) -> dict:
    """A copy of ``deployment`` whose containers' ``--NAME=...`` arguments (NAME: the keyword, ``_`` for
    ``-``) say ``values`` instead; every NAME must be there, so a renamed flag is not silently ignored."""
    copy = yaml.safe_load(yaml.safe_dump(deployment))
    unset = set(values)
    for container in copy["spec"]["template"]["spec"]["containers"]:
        for i, arg in enumerate(container.get("args", [])):
            name = arg.removeprefix("--").split("=", 1)[0].replace("-", "_")
            if arg.startswith("--") and name in values:
                container["args"][i] = f"--{name.replace('_', '-')}={values[name]}"
                unset.discard(name)
    if unset:
        raise ValueError(f"no --{', --'.join(sorted(unset))} in the rendered Deployment")
    return copy


def new_epochs(url: str, runs: list[str], step: int, work: Path, args) -> list[float]:
    """A new epoch (``step``) written to each of ``runs`` at once: the seconds until each shows."""
    landed = {}
    for run in runs:
        event = new_epoch_file(work / f"{run}-{step}", step)
        storage.upload_file(event, f"{LOGDIR}/{run}/train/{event.name}")
        landed[run] = time.monotonic()
    latencies = []
    while landed:
        for run in list(landed):
            if step in scalar_steps(url, f"{run}/train") or time.monotonic() - landed[run] >= args.limit:
                latencies.append(time.monotonic() - landed.pop(run))
        time.sleep(0.1)
    return latencies


def measure(
    name: str,
    start,
    expected: set[str],
    tonight: str,
    first_step: int,
    proxy: CountingProxy,
    args,
    work: Path,
) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started_at = time.monotonic()
    pod: Started = start(port)
    result: dict = {"runs listed": len(expected)}

    def note(key: str, value) -> None:
        result[key] = value
        print(f"{name}: {key}: {value}", file=sys.stderr, flush=True)

    try:
        while not expected <= (listed := listed_runs(url)):
            if time.monotonic() - started_at > args.limit:
                note("cold start (s)", f"> {args.limit:.0f}")
                note("runs listed", f"{len(listed & expected)} of {len(expected)}")
                return result
            time.sleep(1)
        note("cold start (s)", time.monotonic() - started_at)
        trees = {c: process_tree(pid) for c, pid in pod.containers.items()}
        for container, tree in trees.items():
            note(f"{container}: CPU, cold start (s)", cpu_seconds(tree))
        while len(scalar_steps(url, f"{tonight}/train")) < args.epochs:
            time.sleep(0.5)
        # Tonight's run trains (it holds its lease), then two more at once: each sample is a new epoch
        # in each of them, written at once. A way that takes minutes is timed once, with one run.
        training = [tonight, night(args.runs - 2), night(args.runs - 3)]
        moment = random.Random(first_step)
        for count in (1, 3) if name.startswith("mirror") else (1,):
            for run in training[:count]:
                lease.take(ROOT, run, "bench")
            time.sleep(args.settle)  # the mirror's next look at the leases
            latencies: list[float] = []
            for i in range(args.samples):
                # An epoch lands at any moment of the mirror's and TensorBoard's cycles, as training's do:
                # right after the last one showed, each sample would land just after a reload (the worst).
                time.sleep(moment.uniform(0, 3))
                latencies += new_epochs(
                    url, training[:count], first_step + 100 * count + i, work / name, args
                )
                if max(latencies) >= min(args.limit, 60):
                    break
            what = f"new epoch -> scalar, {count} run{'s' * (count > 1)} training"
            if max(latencies) >= args.limit:
                note(f"{what}, median (s)", f"> {args.limit:.0f}")
                break
            note(f"{what}, median (s)", statistics.median(latencies))
            note(f"{what}, max (s)", max(latencies))
        if name.startswith("mirror"):
            before = proxy.count
            time.sleep(args.idle_seconds)
            note("storage requests/min, 3 runs training", (proxy.count - before) * 60 / args.idle_seconds)
        for run in training:
            lease.release(ROOT, run, "bench")
        time.sleep(args.settle)  # the mirror sees the leases end, and lets the last change settle
        before, cpu_before = proxy.count, {c: cpu_seconds(t) for c, t in trees.items()}
        time.sleep(args.idle_seconds)
        note("storage requests/min, idle (none training)", (proxy.count - before) * 60 / args.idle_seconds)
        for container, tree in trees.items():
            cpu = (cpu_seconds(tree) - cpu_before[container]) / args.idle_seconds
            note(f"{container}: CPU, idle (millicores)", cpu * 1000)
            note(f"{container}: memory, idle (MiB)", memory_mib(tree, "VmRSS"))
        page_started = time.monotonic()
        get(f"{url}/")
        run_names = yaml.safe_load(get(f"{url}/data/runs"))
        get(f"{url}/data/plugin/scalars/tags")
        for run in run_names:
            scalar_steps(url, run)
        note("dashboard data load (s)", time.monotonic() - page_started)
        for container, tree in trees.items():
            note(f"{container}: memory, peak (MiB)", memory_mib(tree, "VmHWM"))
        if pod.volume is not None:
            note("bytes on the volume (MiB)", du_mib(pod.volume))
    finally:
        pod.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=365, help="nightly runs in the root")
    parser.add_argument("--model", default="vgg16", help="the reference run's model (at 32 px)")
    parser.add_argument("--epochs", type=int, default=30, help="the reference run's epochs")
    parser.add_argument("--samples", type=int, default=5, help="new epochs timed per way")
    parser.add_argument("--idle-seconds", type=float, default=30)
    parser.add_argument(
        "--settle", type=float, default=7, help="seconds for the mirror to see leases taken or given back"
    )
    parser.add_argument(
        "--limit", type=float, default=900, help="seconds a cold start or a new epoch may take; longer is cut"
    )
    parser.add_argument(
        "--ways",
        default="gcsfs,mirror,mirror-all",
        help="gcsfs, mirror (the manifest's retention), mirror-all, mirror-N (N runs kept)",
    )
    parser.add_argument(
        "--cache", type=Path, help="keep the reference run and the image's venv here, reuse them when there"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="trainboard-bench-"))
    cache = args.cache or work
    setup_started = time.monotonic()
    python = image_venv(cache / "image-venv")
    reference = reference_run(cache / f"reference-{args.model}-{args.epochs}", args.model, args.epochs)
    print(f"image venv and reference run: {time.monotonic() - setup_started:.0f} s", file=sys.stderr)
    layout = bucket_folder(work / "data", reference, args.runs)
    port = free_port()
    gcs_url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [*fake_gcs_command(port), "-data", str(work / "data")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proxy = CountingProxy(gcs_url)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    objects = yaml.safe_load_all(render(ROOT, "gke"))
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    mirror_args = next(
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "bucket-mirror"
    )
    keep = int(next(a for a in mirror_args["args"] if a.startswith("--keep-runs=")).split("=")[1])
    tensorboard_args = next(
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "tensorboard"
    )["args"]
    reload = next(a for a in tensorboard_args if a.startswith("--reload-interval=")).split("=")[1]
    reader_env = {"STORAGE_EMULATOR_HOST": proxy.url}
    tonight = night(args.runs - 1)
    results = {}
    try:
        wait_for_http(f"{gcs_url}/storage/v1/b", timeout=300, proc=server)
        os.environ["STORAGE_EMULATOR_HOST"] = gcs_url  # the bench's own uploads are not counted

        def gcsfs(port: int) -> Started:
            argv = [python, "-m", "trainboard.board.tensorboard_server", f"--logdir={LOGDIR}",
                    f"--port={port}", f"--reload-interval={reload}"]  # fmt: skip
            env = {**os.environ, **reader_env}
            process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return Started(lambda: (process.terminate(), process.wait(10)), {"tensorboard": process.pid})

        def mirror(keep_runs: int, load_fast: str = "true"):
            def start(port: int) -> Started:
                pod_deployment = with_args(deployment, keep_runs=keep_runs, load_fast=load_fast)
                folder = work / f"pod-{keep_runs}"
                shutil.rmtree(folder, ignore_errors=True)
                pod = LocalPod(pod_deployment, folder, port, env=reader_env, python=python)
                pids = {name: process.pid for name, process in pod.processes.items()}
                return Started(pod.stop, pids, folder / "logs")

            return start

        def way(name: str) -> tuple:
            if name == "gcsfs":
                return gcsfs, 0
            if name == "mirror-python":
                return mirror(keep, "false"), keep
            kept = {"mirror": keep, "mirror-all": 0}.get(name)
            kept = int(name.removeprefix("mirror-")) if kept is None else kept
            return mirror(kept), kept

        chosen = [w for w in args.ways.split(",") if w != "mirror-all" or args.runs > keep]
        for i, name in enumerate(chosen):
            start, kept = way(name)
            expected = expected_runs(reference, args.runs, kept)
            # Each way's new epochs at steps of its own: the bucket is shared.
            results[name] = measure(name, start, expected, tonight, 1000 * (i + 1), proxy, args, work)
    finally:
        proxy.shutdown()
        server.terminate()
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"{args.runs} nightly runs ({layout['files per run']} event files each: {args.model}, {args.epochs} "
        f"epochs, {CLASSES} classes; {layout['promoted']} ever promoted; {layout['objects']} objects; "
        f"trend files {layout['trend files']}), retention {keep} runs, {args.samples} new epochs each way "
        f"(x3 with three runs training), idle window {args.idle_seconds:.0f} s, the manifests' intervals"
    )
    keys = list(dict.fromkeys(k for r in results.values() for k in r))
    width, column = max(map(len, keys)) + 2, max(12, *(len(name) + 2 for name in results))
    both = "gcsfs" in results and "mirror" in results
    print(
        f"{'':{width}}" + "".join(f"{name:>{column}}" for name in results) + (f"{'gcsfs/mirror':>14}" * both)
    )
    for key in keys:
        values = [r.get(key, "") for r in results.values()]
        cells = "".join(f"{v:>{column}.2f}" if isinstance(v, float) else f"{v!s:>{column}}" for v in values)
        ratio = ""
        g, m = results.get("gcsfs", {}).get(key), results.get("mirror", {}).get(key)
        if isinstance(g, float) and isinstance(m, float) and m:
            ratio = f"{g / m:>14.1f}"
        print(f"{key:{width}}{cells}{ratio}")


if __name__ == "__main__":
    main()
