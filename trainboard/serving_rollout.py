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

import time
from dataclasses import dataclass
from typing import Any

from trainboard import storage
from trainboard.artifacts.serving_export import SERVING_DIR

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
NAME = "trainboard-champion"  # manifests/components/serving/inferenceservice.yaml


@dataclass(frozen=True)
class Rollout:
    state: str  # "off" (no InferenceService this account may read), "ready" or "failed"
    storage_uri: str = ""
    message: str = ""


def export_uri(model_dir: str) -> str:
    """The storageUri of the model in ``model_dir``: its serving export's base path."""
    return storage.join(model_dir, SERVING_DIR)


def served_uri(api: Any, namespace: str, name: str = NAME) -> str | None:
    """The storageUri the InferenceService serves, or None when serving is off (none, or not readable)."""
    from kubernetes.client.rest import ApiException

    try:
        service = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as e:
        if e.status in (403, 404):
            return None
        raise
    return service["spec"]["predictor"].get("model", {}).get("storageUri")


def roll_out(
    api: Any, namespace: str, storage_uri: str, *, name: str = NAME, timeout: float = 600, poll: float = 5
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
