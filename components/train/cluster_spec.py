"""TF_CONFIG for one worker of a multi-worker run, from what its process is told: the worker count, its
index (JOB_COMPLETION_INDEX) and where the workers are (the TrainJob's pod host names, or loopback ports
when `trainboard local` starts them). Pure (no TensorFlow): tests/test_workers.py calls it directly.

Kubeflow Trainer v2 has no TensorFlow runtime and sets no TF_CONFIG (kubeflow/trainer v2.3.0: no TensorFlow
plugin in pkg/runtime/framework/plugins/, no runtime in manifests/base/runtimes/): its pods are an
Indexed Job in a JobSet, so JOB_COMPLETION_INDEX is the worker's index and worker i's host name is
``<trainjob>-node-0-<i>.<trainjob>`` (kubeflow/trainer v2.3.0, as its JAX plugin builds the coordinator's
address). Worker 0 is the chief: MultiWorkerMirroredStrategy makes the first worker the chief when the
cluster has no "chief" task, and trainboard lets it alone write to the root.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

INDEX_ENV = "JOB_COMPLETION_INDEX"  # Kubernetes sets it in every pod of an Indexed Job
TRAINJOB_ENV = "TRAINBOARD_TRAINJOB"  # on a cluster: the TrainJob's name, so its pods' host names
PORTS_ENV = "TRAINBOARD_WORKER_PORTS"  # locally: one loopback port per worker, comma-separated
PORT = 2222  # the workers' gRPC port in a TrainJob's pods (TensorFlow's customary one)


def worker_addresses(workers: int, environ: Mapping[str, str]) -> list[str]:
    """host:port of every worker, in index order: loopback ports when PORTS_ENV is set, else the pods
    of the TrainJob named by TRAINJOB_ENV. ValueError when neither fits ``workers``."""
    if environ.get(PORTS_ENV):
        ports = environ[PORTS_ENV].split(",")
        if len(ports) != workers or not all(p.isdigit() for p in ports):
            raise ValueError(f"{PORTS_ENV}={environ[PORTS_ENV]!r} does not name {workers} ports")
        return [f"127.0.0.1:{port}" for port in ports]
    job = environ.get(TRAINJOB_ENV, "")
    if not job:
        raise ValueError(f"a worker needs {PORTS_ENV} (local) or {TRAINJOB_ENV} (a TrainJob's pods)")
    return [f"{job}-node-0-{i}.{job}:{PORT}" for i in range(workers)]


def tf_config(workers: int, environ: Mapping[str, str]) -> str:
    """The TF_CONFIG JSON of the worker ``environ`` describes (INDEX_ENV its index)."""
    index = environ.get(INDEX_ENV, "")
    if not index.isdigit() or int(index) >= workers:
        raise ValueError(f"{INDEX_ENV}={index!r} is not a worker index below {workers}")
    addresses = worker_addresses(workers, environ)
    return json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": int(index)}})


def worker_index(config: str) -> int:
    """This worker's index in the TF_CONFIG JSON ``config`` (0, the chief, when there is none)."""
    return int(json.loads(config)["task"]["index"]) if config else 0
