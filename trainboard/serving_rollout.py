"""Rolling KServe's InferenceService (manifests/components/serving) to a new champion's export.

KServe's storage initializer copies ``storageUri`` once, when a predictor pod starts
(kserve/kserve v0.20.0, pkg/webhook/admission/pod/storage_initializer_injector.go), so a new champion
reaches the server only through a new revision: patch ``spec.predictor.model.storageUri`` to
``models/<run>/serving`` (a folder that never changes), then wait for KServe to say the new revision is
ready (``status.components.predictor``: latestReadyRevision == latestCreatedRevision, condition Ready
True; pkg/apis/serving/v1beta1/inference_service_status.go). The champion record is the truth and is never
changed here: a failed rollout is reported, and what is served is compared with the record on request.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainboard import storage
from trainboard.artifacts.champion import read_champion
from trainboard.artifacts.serving_export import SERVING_DIR

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
NAME = "trainboard-champion"  # manifests/components/serving/inferenceservice.yaml
_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"  # the pod's own namespace
# How long a rollout is waited for: the progress deadline Kubeflow's manifests give Knative
# (kubeflow/manifests common/knative/README.md: config-deployment progressDeadline 600s, upstream's 120s
# being too short for large models). Past it Knative fails the revision and KServe's Ready condition says
# why; a shorter wait would report a slow start as failed while Knative still lets it come up.
ROLLOUT_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class Rollout:
    state: str  # "off" (no InferenceService this account may read), "ready" or "failed"
    storage_uri: str = ""
    message: str = ""


def export_uri(model_dir: str) -> str:
    """The storageUri of the model in ``model_dir``: its serving export's base path."""
    return storage.join(model_dir, SERVING_DIR)


def _service(api: Any, namespace: str, name: str) -> dict | None:
    """The InferenceService, or None when serving is off (none, or this account may not read it)."""
    from kubernetes.client.rest import ApiException

    try:
        return api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as e:
        if e.status in (403, 404):
            return None
        raise


def served_uri(api: Any, namespace: str, name: str = NAME) -> str | None:
    """The storageUri the InferenceService names, or None when serving is off."""
    service = _service(api, namespace, name)
    return None if service is None else service["spec"]["predictor"].get("model", {}).get("storageUri")


def roll_out(
    api: Any,
    namespace: str,
    storage_uri: str,
    *,
    name: str = NAME,
    timeout: float = ROLLOUT_TIMEOUT_SECONDS,
    poll: float = 5,
) -> Rollout:
    """Patch the InferenceService to ``storage_uri`` and wait for its new revision to be ready."""
    from kubernetes.client.rest import ApiException

    if served_uri(api, namespace, name) is None:
        return Rollout("off")
    patch = {"spec": {"predictor": {"model": {"storageUri": storage_uri}}}}
    try:
        generation = api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, patch)[
            "metadata"
        ].get("generation", 0)
    except ApiException as e:
        return Rollout("failed", storage_uri, f"patching {name} was refused: {e.status} {e.reason}")
    deadline = time.monotonic() + timeout
    while True:
        service = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        verdict = _verdict(service, generation)
        if verdict is not None:
            return Rollout(*verdict) if verdict[0] == "failed" else Rollout("ready", storage_uri)
        if time.monotonic() >= deadline:
            return Rollout("failed", storage_uri, f"{name} was not ready {timeout:.0f} s after the patch")
        time.sleep(poll)


def _verdict(service: dict, generation: int) -> tuple[str, str, str] | None:
    """("ready", ...), ("failed", uri, why) or None (still rolling out), from KServe's status."""
    status = service.get("status", {})
    if status.get("observedGeneration", 0) < generation:
        return None
    uri = service["spec"]["predictor"]["model"]["storageUri"]
    ready = next((c for c in status.get("conditions", []) if c.get("type") == "Ready"), None)
    predictor = status.get("components", {}).get("predictor", {})
    created, served = predictor.get("latestCreatedRevision"), predictor.get("latestReadyRevision")
    if ready and ready.get("status") == "True" and created and created == served:
        return ("ready", uri, "")
    if ready and ready.get("status") == "False" and ready.get("reason"):
        message = ready.get("message") or ready["reason"]
        return ("failed", uri, f"the new revision failed: {ready['reason']}: {message}")
    return None


def cluster_serving() -> tuple[Any, str] | None:
    """(the Kubernetes API as this pod's service account, its namespace), or None outside a cluster."""
    if not os.environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    from kubernetes import client, config

    config.load_incluster_config()
    return client.CustomObjectsApi(), Path(_NAMESPACE_FILE).read_text().strip()


def roll_out_champion(root: str, cluster: tuple[Any, str] | None = None) -> Rollout:
    """Roll the InferenceService to the model the champion record names (the record is read, not
    changed); said in the log either way. ``cluster``: cluster_serving()'s, by default."""
    cluster = cluster or cluster_serving()
    if cluster is None:  # outside a cluster: not a read of the root more
        return Rollout("off")
    record, _ = read_champion(root)
    if record is None:
        return Rollout("off")
    rollout = roll_out(cluster[0], cluster[1], export_uri(record.model_in(root)))
    if rollout.state == "failed":
        log.warning(
            "serving: the rollout of champion %s to InferenceService %s failed (%s); the champion record "
            "still names %s: `trainboard champion show` says what is served",
            record.run,
            NAME,
            rollout.message,
            record.run,
        )
    elif rollout.state == "ready":
        log.info(
            "serving: InferenceService %s serves champion %s (%s)", NAME, record.run, rollout.storage_uri
        )
    return rollout


def served_versus_record(root: str, cluster: tuple[Any, str] | None = None) -> str | None:
    """What `champion show` says of serving: whether the InferenceService serves the record's export
    (its spec names it and KServe says that revision is ready); None when serving is off."""
    cluster = cluster or cluster_serving()
    if cluster is None:  # outside a cluster: not a read of the root more
        return None
    record, _ = read_champion(root)
    if record is None:
        return None
    service = _service(cluster[0], cluster[1], NAME)
    if service is None:
        return None
    wanted, named = export_uri(record.model_in(root)), service["spec"]["predictor"]["model"]["storageUri"]
    if named != wanted:
        return f"InferenceService {NAME} names {named}, not the record's {wanted}"
    verdict = _verdict(service, service["metadata"].get("generation", 0))
    if verdict is None:
        return f"InferenceService {NAME} is rolling out the record's {wanted}"
    if verdict[0] == "failed":
        return f"InferenceService {NAME} does not serve the record's {wanted}: {verdict[2]}"
    return f"InferenceService {NAME} serves the record's {wanted}"
