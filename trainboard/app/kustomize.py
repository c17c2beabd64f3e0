"""Render ``manifests/`` (kustomize) for one bucket: ready-to-apply YAML for the team TensorBoard, and with
``serving`` the champion's InferenceService (``manifests/components/serving``) beside it.

The bucket is set in one place, ``manifests/base/settings.yaml`` (and, with serving, the
InferenceService's storageUri); rendering copies ``manifests/`` (package data, read through
importlib.resources: a wheel or a zip holds it as well as a checkout) to a temporary folder, sets them
(and the optional namespace, Google project and host name) there and runs ``kubectl kustomize`` on the
chosen overlay. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import importlib.resources
import re
import shutil
import subprocess
import tempfile
from importlib.resources.abc import Traversable
from pathlib import Path

import yaml

from trainboard import layout, storage
from trainboard.errors import UsageError
from trainboard.roots import checked_uri

# manifests/ is a package of data installed beside trainboard/: in the wheel, the image and an editable
# install alike.
MANIFESTS_DIR = importlib.resources.files("trainboard.manifests")
OVERLAYS = ("gke", "kubeflow", "basic")
# What each overlay's options edit, relative to manifests/.
_SETTINGS = "base/settings.yaml"
_GCP_SERVICE_ACCOUNT = "components/workload-identity/gcp-service-account.yaml"
_CERTIFICATE = "overlays/gke/managedcertificate.yaml"
_SERVING = "../../components/serving"  # as an overlay's kustomization names it
_INFERENCE_SERVICE = "components/serving/inferenceservice.yaml"
_WORKLOAD_IDENTITY_OVERLAYS = ("gke", "kubeflow")

# What each overlay renders as a placeholder (YOUR-PROJECT, tensorboard.example.com) unless given: the
# Workload Identity service account's project, the managed certificate's host name.
_NEEDS = {"gke": ("project", "domain"), "kubeflow": ("project",), "basic": ()}
_MEANS = {
    "project": "--project PROJECT (of trainboard-tensorboard@PROJECT.iam.gserviceaccount.com)",
    "domain": "--domain HOST (the HTTPS host name)",
}

_PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_NAMESPACE_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# ManagedCertificate's own rule for a domain.
_DOMAIN_RE = re.compile(
    r"^(([a-zA-Z0-9]+|[a-zA-Z0-9][-a-zA-Z0-9]*[a-zA-Z0-9])\.)+[a-zA-Z][-a-zA-Z0-9]*[a-zA-Z0-9]$"
)


def check_options(
    bucket: str, overlay: str, *, namespace: str = "", project: str = "", domain: str = ""
) -> str:
    """The TensorBoard logdir (``<root>/tensorboard``) of ``bucket``; UsageError on any bad option."""
    if overlay not in OVERLAYS:
        raise UsageError("overlay", f"unknown overlay {overlay!r}; choose one of: {', '.join(OVERLAYS)}")
    if not storage.is_gcs(bucket):
        raise UsageError("bucket", f"{bucket!r} is not a gs:// URI; expected gs://BUCKET[/PREFIX]")
    root = checked_uri(bucket, "bucket")
    if namespace and not _NAMESPACE_RE.match(namespace):
        raise UsageError("namespace", f"{namespace!r} is not a Kubernetes namespace name (a-z 0-9 -, 1-63)")
    if project and overlay not in _WORKLOAD_IDENTITY_OVERLAYS:
        overlays = " and ".join(_WORKLOAD_IDENTITY_OVERLAYS)
        raise UsageError("project", f"applies to the {overlays} overlays only")
    if project and not _PROJECT_RE.match(project):
        raise UsageError("project", f"{project!r} is not a Google Cloud project id (6-30 of a-z 0-9 -)")
    if domain and overlay != "gke":
        raise UsageError("domain", "applies to the gke overlay only")
    if domain and not (len(domain) <= 63 and _DOMAIN_RE.match(domain)):
        raise UsageError("domain", f"{domain!r} is not a host name of at most 63 characters")
    return layout.tensorboard_root(root)


def check_complete(overlay: str, project: str = "", domain: str = "") -> None:
    """UsageError naming what ``overlay`` needs and was not given: the YAML would hold placeholders that
    kubectl applies without a word, and a pod that cannot read the bucket or a certificate never issued."""
    given = {"project": project, "domain": domain}
    missing = [name for name in _NEEDS[overlay] if not given[name]]
    if missing:
        raise UsageError(
            missing[0],
            f"the {overlay} overlay needs {' and '.join(_MEANS[name] for name in _NEEDS[overlay])}; "
            f"missing: {', '.join('--' + name for name in missing)}",
        )


def render(
    bucket: str,
    overlay: str,
    *,
    namespace: str = "",
    project: str = "",
    domain: str = "",
    kubectl: str = "kubectl",
    serving: bool = False,
    placeholders: bool = True,
) -> str:
    """The overlay's YAML for ``bucket`` (``gs://BUCKET/PREFIX``, the pipeline's root); ``serving``: with
    the serving component on. ``placeholders``: what the overlay needs and was not given stays the
    template's placeholder; False (the CLI): refused."""
    logdir = check_options(bucket, overlay, namespace=namespace, project=project, domain=domain)
    if not placeholders:
        check_complete(overlay, project, domain)
    kubectl_path = shutil.which(kubectl)
    if kubectl_path is None:
        raise UsageError("kubectl", f"{kubectl!r} not found; install kubectl (1.27 or newer: kustomize v5)")
    with tempfile.TemporaryDirectory(prefix="trainboard-manifests-") as tmp:
        tree = Path(tmp) / "manifests"
        _copy_tree(MANIFESTS_DIR, tree)
        _edit(tree / _SETTINGS, lambda doc: doc["data"].update(logdir=logdir))
        if serving:
            _turn_on_serving(tree, overlay, checked_uri(bucket, "bucket"))
        if project:
            _edit(tree / _GCP_SERVICE_ACCOUNT, lambda doc: doc["data"].update(_google_accounts(project)))
        if domain:
            _edit(tree / _CERTIFICATE, lambda doc: doc["spec"].update(domains=[domain]))
        if namespace:
            kustomization = tree / "overlays" / overlay / "kustomization.yaml"
            _edit(kustomization, lambda doc: doc.update(namespace=namespace))
        result = subprocess.run(
            [kubectl_path, "kustomize", str(tree / "overlays" / overlay)],
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize failed: {result.stderr.strip()}")
    return result.stdout


def _turn_on_serving(tree: Path, overlay: str, root: str) -> None:
    """The serving component in ``overlay``, its storageUri at ``root``'s champion copy. First in the
    list: the workload-identity component's replacement then finds its ServiceAccount to annotate."""
    kustomization = tree / "overlays" / overlay / "kustomization.yaml"
    _edit(kustomization, lambda doc: doc.update(components=[_SERVING, *doc.get("components", [])]))
    # models/champion/ holds the champion's model, serving export included, so this serves the
    # champion as applied; the next promotion or rollback patches it to models/<run>/serving, a folder
    # that never changes (trainboard/serving_rollout.py; imported here: the CLI's startup imports this).
    from trainboard.serving_rollout import export_uri

    uri = export_uri(layout.champion_model_dir(root))
    _edit(tree / _INFERENCE_SERVICE, lambda doc: doc["spec"]["predictor"]["model"].update(storageUri=uri))


def _google_accounts(project: str) -> dict[str, str]:
    """The Google service accounts the Workload Identity component names: the team TensorBoard's, and
    the InferenceService's (used where serving is on)."""
    return {
        "serviceAccount": f"trainboard-tensorboard@{project}.iam.gserviceaccount.com",
        "servingServiceAccount": f"trainboard-serving@{project}.iam.gserviceaccount.com",
    }


def _copy_tree(source: Traversable, dest: Path) -> None:
    """The package data into a real folder, which kubectl reads (a Traversable may be inside a zip)."""
    dest.mkdir()
    for entry in source.iterdir():
        if entry.is_dir():
            _copy_tree(entry, dest / entry.name)
        else:
            (dest / entry.name).write_bytes(entry.read_bytes())


def _edit(path: Path, change) -> None:
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
