"""The hand-off's local mode: `workers` worker processes on this machine, on loopback ports, each told
what a TrainJob's pod is told (JOB_COMPLETION_INDEX and where the workers are; components/train/worker.py
turns that into TF_CONFIG). The train task starts them, passes on their output (the chief's as its own,
so its epoch events show; the others' prefixed with their name) and waits: when one fails, the others
are stopped (they would wait on it in the next all-reduce) and the task fails with one line naming it."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

from trainboard import task_events
from trainboard.artifacts.model import ModelInfo, read_model_info
from trainboard.components.train.cluster_spec import INDEX_ENV, PORTS_ENV
from trainboard.config import TrainingConfig

TAIL_LINES = 20  # of each worker's output, for its failure


class WorkerFailed(RuntimeError):
    """A worker process of a multi-worker train ended with an error."""


def free_ports(count: int) -> list[int]:
    """``count`` loopback ports free now (bound all at once, so they differ, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _die_with_parent() -> None:
    """In the worker, before it runs: SIGKILL when the train task dies (prctl PR_SET_PDEATHSIG, Linux),
    so that a killed task leaves no worker training into the root without it."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG


def _pass_on(process: subprocess.Popen[str], prefix: str, tail: deque[str]) -> None:
    assert process.stdout is not None  # started with stdout=PIPE, text=True
    for line in process.stdout:
        tail.append(line.rstrip())
        sys.stdout.write(prefix + line)
        sys.stdout.flush()


def _ending(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


def last_error(lines: Iterable[str]) -> str:
    """ ": " and the last line of ``lines`` that names an exception (``ValueError: ...``), or ""."""
    errors = [line for line in lines if line and not line.startswith(" ") and "Error" in line.split(":")[0]]
    return f": {errors[-1]}" if errors else ""


def train_on_local_workers(
    dataset_dir: str, model_dir: str, root: str, run: str, *, config: TrainingConfig, gpus: int = 0
) -> ModelInfo:
    """Train on ``config.workers`` processes here; what the chief saved in ``model_dir``. WorkerFailed
    naming the first worker that failed (the others stopped)."""
    ports = ",".join(map(str, free_ports(config.workers)))
    task_events.emit("workers", workers=config.workers, how="a process each on this machine")
    command = [sys.executable, "-m", "trainboard.components.train.worker", dataset_dir, model_dir, root, run]
    command += [json.dumps(asdict(config)), str(gpus)]
    processes, tails, threads = [], [], []
    for index in range(config.workers):
        env = {**os.environ, INDEX_ENV: str(index), PORTS_ENV: ports, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=Path.cwd(),
            preexec_fn=_die_with_parent,
        )
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        prefix = "" if index == 0 else f"worker {index}: "
        thread = threading.Thread(target=_pass_on, args=(process, prefix, tail), daemon=True)
        thread.start()
        processes.append(process)
        tails.append(tail)
        threads.append(thread)
    first = None  # the first worker seen failing: the cause (the others stopped here, or lost their peer)
    try:
        while first is None and any(p.poll() is None for p in processes):
            time.sleep(0.2)
            first = next((i for i, p in enumerate(processes) if p.poll() not in (None, 0)), None)
        if first is None:  # they all ended at once
            first = next((i for i, p in enumerate(processes) if p.poll() not in (None, 0)), None)
    finally:
        for p in processes:  # a failure, or this task being stopped: no worker is left behind
            if p.poll() is None:
                p.kill()
            p.wait()
        for thread in threads:
            thread.join(timeout=5)
    if first is not None:
        how = f"{_ending(processes[first].returncode)}{last_error(tails[first])}"
        raise WorkerFailed(
            f"worker {first} of {config.workers} {how}; run it again to resume from the chief's last "
            "committed epoch"
        )
    return read_model_info(model_dir)
