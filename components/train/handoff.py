"""The train task's side of a multi-worker run on a cluster: the TrainJob's workers get what this task's
own pod got (its GPU limits, node selector and tolerations, read from the Kubernetes API), read the
Dataset artifact from its bucket URI and the chief uploads the model next to the run's checkpoints; the
task shows the chief's committed epochs while it waits, and downloads the model into its output."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import TypedDict, Unpack

from kubernetes import client

from trainboard import layout, storage, task_events
from trainboard.artifacts.model import ModelInfo, read_model_info
from trainboard.artifacts.training_state import load_state
from trainboard.components.train.trainjob import (
    NAMESPACE_FILE,
    POLL_SECONDS,
    TIMEOUT_SECONDS,
    PodSettings,
    cluster_api,
    run_trainjob,
    trainjob_manifest,
    trainjob_name,
)
from trainboard.config import TrainingConfig

MODEL_FOLDER = "trainjob-model"  # under the run's checkpoints: where the chief leaves the model
MAIN_CONTAINER = "main"  # the KFP v2 launcher's container in a task's pod


def pod_settings(api: client.CoreV1Api, namespace: str, pod: str) -> PodSettings:
    """This task's pod as trainjob_manifest takes it: what the pipeline gave the one-node train pod (its
    image, GPU limits, node pool, taints) and its service account (the bucket's credentials)."""
    spec = api.read_namespaced_pod(pod, namespace).spec
    main = next((c for c in spec.containers if c.name == MAIN_CONTAINER), spec.containers[0])
    plain = client.ApiClient().sanitize_for_serialization
    return {
        "image": main.image,
        "resources": plain((main.resources and main.resources.limits) or {}),
        "node_selector": plain(spec.node_selector or {}),
        "tolerations": plain(spec.tolerations or []),
        "service_account": spec.service_account_name or "",
    }


class ClusterAccess(TypedDict, total=False):
    """How the hand-off reaches the cluster and waits, where not as this task's pod (tests): the APIs
    (custom objects, core), the namespace, and trainjob.wait's poll and timeout seconds."""

    apis: tuple[client.CustomObjectsApi, client.CoreV1Api]
    namespace: str
    poll: float
    timeout: float


def train_on_trainjob(
    data_uri: str,
    model_dir: str,
    root: str,
    run: str,
    *,
    config: TrainingConfig,
    job_id: str,
    gpus: int = 0,
    **access: Unpack[ClusterAccess],
) -> ModelInfo:
    """Train on a TrainJob of ``config.workers`` nodes; what the chief saved, in ``model_dir``."""
    custom, core = access.get("apis") or (cluster_api(), client.CoreV1Api())
    namespace = access.get("namespace") or NAMESPACE_FILE.read_text().strip()
    model_uri = storage.join(layout.checkpoint_dir(root, run), MODEL_FOLDER)
    args = [data_uri, model_uri, root, run, json.dumps(asdict(config)), str(gpus)]
    name = trainjob_name(job_id)
    settings = pod_settings(core, namespace, os.environ.get("HOSTNAME", ""))
    body = trainjob_manifest(name, config.workers, args, run, **settings)
    task_events.emit("workers", workers=config.workers, how=f"a node each of TrainJob {name}")
    progress = lambda: load_state(root, run).epoch  # noqa: E731 (the chief's commits, read as it trains)
    run_trainjob(
        custom,
        namespace,
        body,
        progress,
        epochs=config.epochs,
        core=core,
        poll=access.get("poll", POLL_SECONDS),
        timeout=access.get("timeout", TIMEOUT_SECONDS),
    )
    storage.download_dir(model_uri, model_dir)
    return read_model_info(model_dir)
