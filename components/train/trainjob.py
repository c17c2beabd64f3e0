"""The hand-off on a cluster: with workers > 1 the train task runs the training as a Kubeflow Trainer
TrainJob (trainer.kubeflow.org/v1alpha1, Trainer v2.3.0) of ``workers`` nodes and waits for it.

The TrainJob runs the component image's worker (components/train/worker.py) under trainboard's
ClusterTrainingRuntime (manifests/components/multi-worker: Trainer ships no TensorFlow runtime). Its name
comes from the KFP run and the task, so a retried task finds the job its first attempt started and waits
on it instead of starting a second one. The task deletes it when it ends, fails or is stopped (SIGTERM,
as KFP's cancellation and Kubernetes stop a pod); a task killed outright leaves it to its
activeDeadlineSeconds (the wait's bound), and to the retry, which finds it.
"""

from __future__ import annotations

import hashlib
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Required, TypedDict, Unpack

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from trainboard import task_events
from trainboard.components.train.cluster_spec import TRAINJOB_ENV
from trainboard.components.train.local_workers import last_error

GROUP, VERSION, PLURAL = "trainer.kubeflow.org", "v1alpha1", "trainjobs"
TRAINER_RELEASE = "v2.3.0"  # the pinned release: its API renamed fields between releases
RUNTIME = "trainboard-tensorflow"  # the ClusterTrainingRuntime of manifests/components/multi-worker
TIMEOUT_SECONDS = 48 * 3600  # the wait's bound, and the TrainJob's activeDeadlineSeconds
POLL_SECONDS = 10.0
NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
log = logging.getLogger(__name__)


class TrainJobError(RuntimeError):
    """The TrainJob failed, did not end in time, or could not be created (one line says why)."""


def trainjob_name(job_id: str, task: str = "train") -> str:
    """The TrainJob of this KFP run's task: the same for each attempt of it. Short, so that its pods'
    host names (``<name>-node-0-<i>``) stay within Kubernetes' 63 characters."""
    return "trainboard-" + hashlib.sha256(f"{job_id}/{task}".encode()).hexdigest()[:12]


class PodSettings(TypedDict, total=False):
    """What each node of the TrainJob gets of a one-node train pod (handoff.pod_settings reads them)."""

    image: Required[str]
    resources: dict[str, str]  # limits
    node_selector: dict[str, str]
    tolerations: list[dict]
    service_account: str


def trainjob_manifest(
    name: str, workers: int, args: list[str], run: str, **settings: Unpack[PodSettings]
) -> dict[str, Any]:
    """The TrainJob: ``workers`` nodes of the ``settings``' image running the worker with ``args``, each
    with the resources (limits), node selector, tolerations and service account a one-node train pod gets."""
    image, resources = settings["image"], settings.get("resources")
    pod: dict[str, Any] = {}
    if node_selector := settings.get("node_selector"):
        pod["nodeSelector"] = node_selector
    if tolerations := settings.get("tolerations"):
        pod["tolerations"] = tolerations
    if service_account := settings.get("service_account"):
        pod["serviceAccountName"] = service_account
    spec: dict[str, Any] = {
        "runtimeRef": {"apiGroup": GROUP, "kind": "ClusterTrainingRuntime", "name": RUNTIME},
        "activeDeadlineSeconds": TIMEOUT_SECONDS,
        "trainer": {
            "image": image,
            "command": ["python", "-m", "trainboard.components.train.worker"],
            "args": args,
            "numNodes": workers,
            "env": [{"name": TRAINJOB_ENV, "value": name}],
            **({"resourcesPerNode": {"limits": resources}} if resources else {}),
        },
    }
    if pod:  # Trainer v2.3.0's way to set a pod's fields (earlier releases: podSpecOverrides)
        template = {
            "spec": {"replicatedJobs": [{"name": "node", "template": {"spec": {"template": {"spec": pod}}}}]}
        }
        spec["runtimePatches"] = [{"manager": "trainboard", "trainingRuntimeSpec": {"template": template}}]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainJob",
        "metadata": {"name": name, "labels": {"trainboard/run": run}},
        "spec": spec,
    }


def cluster_api() -> client.CustomObjectsApi:
    """The Kubernetes API as the task's pod sees it (its service account)."""
    config.load_incluster_config()
    return client.CustomObjectsApi()


def _refused(e: ApiException, namespace: str) -> TrainJobError:
    """One line: what to install (no TrainJob API) or grant (403), else the API's own words."""
    if e.status == 404:
        return TrainJobError(
            f"the cluster has no TrainJob API ({GROUP}/{VERSION}): install Kubeflow Trainer "
            f'{TRAINER_RELEASE} (kubectl apply --server-side -k "https://github.com/kubeflow/trainer.git/'
            f"manifests/overlays/manager?ref={TRAINER_RELEASE}\") and turn on trainboard's runtime, the "
            "Kustomize component manifests/components/multi-worker (docs/cluster.md)"
        )
    if e.status == 403:
        return TrainJobError(
            f"this task's service account may not manage trainjobs.{GROUP} in namespace {namespace}: grant "
            "it with manifests/components/multi-worker's Role and RoleBinding (docs/cluster.md)"
        )
    return TrainJobError(f"the Kubernetes API answered {e.status} {e.reason}: {(e.body or '')[:300]}")


def start(api: client.CustomObjectsApi, namespace: str, body: dict) -> dict:
    """Create the TrainJob, or find the one an earlier attempt of this task created (same name)."""
    try:
        return api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    except ApiException as e:
        if e.status != 409:
            raise _refused(e, namespace) from None
    log.info(
        "TrainJob %s exists (an earlier attempt of this task started it): waiting on it",
        body["metadata"]["name"],
    )
    return api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body["metadata"]["name"])


def _conditions(job: object, name: str) -> list[dict]:
    """The TrainJob's status.conditions (none yet: []); an answer of another shape (a proxy's page, a
    status that is not an object) is TrainJobError naming it, never a traceback: the task fails in one
    line and its job is deleted, as for any other failure."""
    status = (job.get("status") or {}) if isinstance(job, dict) else None
    conditions = (status.get("conditions") or []) if isinstance(status, dict) else None
    if not isinstance(conditions, list) or not all(isinstance(c, dict) for c in conditions):
        raise TrainJobError(
            f"the Kubernetes API answered GET trainjobs/{name} with something that is not a TrainJob "
            f"(status.conditions is not a list of objects; it answered {type(job).__name__})"
        )
    return conditions


def _condition(conditions: list[dict], kind: str) -> dict | None:
    return next((c for c in conditions if c.get("type") == kind and c.get("status") == "True"), None)


def failed_worker(core: client.CoreV1Api, namespace: str, name: str, lines: int = 20) -> str:
    """ "; worker I (pod P) exited with N: ITS ERROR" for the first pod of TrainJob ``name`` that ended
    with an error (the last lines of its log go to this task's log), or "". Its pods are a JobSet's named
    after the TrainJob (kubeflow/trainer v2.3.0), each labelled with its Indexed Job's completion index."""
    try:
        pods = core.list_namespaced_pod(namespace, label_selector=f"jobset.sigs.k8s.io/jobset-name={name}")
        for pod in sorted(pods.items, key=lambda p: p.metadata.name):
            for status in pod.status.container_statuses or []:
                ended = status.state.terminated if status.state else None
                if status.name != "node" or not ended or not ended.exit_code:
                    continue
                tail = core.read_namespaced_pod_log(
                    pod.metadata.name, namespace, container="node", tail_lines=lines
                ).splitlines()
                log.error("the last lines of pod %s:\n%s", pod.metadata.name, "\n".join(tail))
                index = (pod.metadata.labels or {}).get("batch.kubernetes.io/job-completion-index", "?")
                pod_name = pod.metadata.name
                return f"; worker {index} (pod {pod_name}) exited with {ended.exit_code}{last_error(tail)}"
    except ApiException as e:  # the failure itself is what matters: which worker is a bonus
        log.warning("could not read the pods of TrainJob %s: %s", name, e.reason)
    return ""


def wait(
    api: client.CustomObjectsApi,
    namespace: str,
    name: str,
    progress: Callable[[], int],
    *,
    epochs: int,
    timeout: float = TIMEOUT_SECONDS,
    poll: float = POLL_SECONDS,
    core: client.CoreV1Api | None = None,
) -> None:
    """Until the TrainJob is Complete; TrainJobError when it is Failed (its message, and with ``core``
    the failed worker and its error) or after ``timeout`` seconds. Each change of ``progress()`` (the
    chief's committed epochs) is shown."""
    deadline, shown = time.monotonic() + timeout, -1
    while True:
        try:
            job = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except ApiException as e:
            raise _refused(e, namespace) from None
        except UnicodeDecodeError:  # the client decodes the body before it parses it
            raise TrainJobError(
                f"the Kubernetes API answered GET trainjobs/{name} with bytes that are not UTF-8 text"
            ) from None
        conditions = _conditions(job, name)
        if (done := progress()) != shown:
            shown = done
            task_events.emit("progress", unit="epochs committed by the chief", done=done, total=epochs)
        if _condition(conditions, "Complete"):
            return
        if failed := _condition(conditions, "Failed"):
            worker = failed_worker(core, namespace, name) if core else ""
            raise TrainJobError(
                f"TrainJob {name} failed: {failed.get('reason', '')}: {failed.get('message', '')}{worker}"
            )
        if time.monotonic() >= deadline:
            raise TrainJobError(f"TrainJob {name} did not end within {timeout:g} s")
        time.sleep(poll)


def delete(api: client.CustomObjectsApi, namespace: str, name: str) -> None:
    """Delete the TrainJob and its pods (gone already counts as deleted)."""
    try:
        api.delete_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, propagation_policy="Foreground"
        )
    except ApiException as e:
        if e.status != 404:
            log.warning("deleting TrainJob %s failed: %s", name, _refused(e, namespace))


def run_trainjob(
    api: client.CustomObjectsApi,
    namespace: str,
    body: dict,
    progress: Callable[[], int],
    *,
    epochs: int,
    core: client.CoreV1Api | None = None,
    **wait_options: float,
) -> None:
    """Start (or find) the TrainJob, wait for it, and delete it whatever happens: also when the task is
    stopped (SIGTERM becomes an exception here, so the deletion runs). ``core``: to name a failed
    worker."""
    name = body["metadata"]["name"]

    def stopped(signum, frame):
        raise TrainJobError(f"the task was stopped (signal {signum}) while TrainJob {name} ran")

    previous = signal.signal(signal.SIGTERM, stopped)
    try:
        start(api, namespace, body)
        wait(api, namespace, name, progress, epochs=epochs, core=core, **wait_options)
    finally:
        delete(api, namespace, name)
        signal.signal(signal.SIGTERM, previous)
