"""`trainboard doctor`'s checks: a team's first day on a cluster, one line per piece that a run needs, each
with what to do when it fails. Each check is a function of what the command was given; none raises.

The Kubernetes side (the team TensorBoard Deployment and its mirror, the Trainer CRD and trainboard's
runtime for workers > 1, the notification Secret, GPU nodes, KServe's CRD and the InferenceService with
serving on, the Model Registry) is doctor_kubernetes.py's, through KUBERNETES_CHECKS.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable

from trainboard import storage
from trainboard.app.cluster.doctor_check import Check, DoctorInput, optional_server_answers
from trainboard.app.cluster.doctor_kubernetes import kubernetes_checks
from trainboard.errors import UsageError
from trainboard.mlflow_log import TRACKING_URI_ENV

KFP_FIXES = {
    "endpoint": "pass --endpoint the KFP API's URL as reachable from here (e.g. after `kubectl port-forward "
    "-n kubeflow svc/ml-pipeline-ui 8080:80`: http://127.0.0.1:8080), or upgrade an older backend",
    "token": "pass a token the API accepts: --token, KF_PIPELINES_TOKEN or the config file",
    "namespace": "pass --namespace, the profile namespace the runs go to",
}


def kfp_endpoint(given: DoctorInput) -> Check:
    """The KFP API answers healthz with these credentials and runs a release trainboard supports."""
    from trainboard.app.cluster.auth import credentials
    from trainboard.app.cluster.connection import MIN_RELEASE, check_server

    minimum = ".".join(map(str, MIN_RELEASE))
    if not given.settings.endpoint:
        return Check(
            "Kubeflow Pipelines", False, "no endpoint given", "pass --endpoint, or set KF_PIPELINES_ENDPOINT"
        )
    try:
        health = check_server(given.settings, credentials(given.settings.token))
    except UsageError as e:
        return Check("Kubeflow Pipelines", False, e.problem, KFP_FIXES.get(e.field, ""))
    found = f"{given.settings.endpoint} answers: release {health.release} (trainboard needs >= {minimum})"
    return Check("Kubeflow Pipelines", True, found + (", multi-user" if health.multi_user else ""))


def root_writable(given: DoctorInput) -> Check:
    """A file written under the root and deleted again, from here, with these credentials."""
    from trainboard.roots import check_root

    probe = ""
    try:
        root = check_root(given.root, will_write=True)
        probe = storage.join(root, f".trainboard-doctor-{os.getpid()}")
        storage.write_bytes(probe, b"trainboard doctor\n")
        storage.delete(probe)
    except UsageError as e:
        return Check("root", False, e.problem, "give --root a folder or bucket this account can write")
    except Exception as e:  # the storage's own error (permissions, network): said as it is
        fix = "grant this account write access to the bucket (roles/storage.objectAdmin on it)"
        return Check("root", False, f"cannot write {probe or given.root}: {type(e).__name__}: {e}", fix)
    return Check("root", True, f"{root} is writable from here")


def mlflow_answers(given: DoctorInput) -> Check | None:
    """MLflow's tracking server answers GET /health, where one is configured (else no check)."""
    uri = given.mlflow_tracking_uri or os.environ.get(TRACKING_URI_ENV, "")
    if not uri:
        return None
    if not uri.startswith(("http://", "https://")):
        return Check("MLflow", True, f"{uri} is not a server (a local store): nothing to reach")
    fix = f"start the tracking server or correct {TRACKING_URI_ENV} (runs go on without it, with a warning)"
    return optional_server_answers("MLflow", urllib.request.Request(uri.rstrip("/") + "/health"), fix=fix)


CHECKS: tuple[Callable[[DoctorInput], Check | None], ...] = (kfp_endpoint, root_writable, mlflow_answers)
# The Kubernetes side: one connection, then a line per piece that applies (doctor_kubernetes.py).
KUBERNETES_CHECKS: tuple[Callable[[DoctorInput], list[Check]], ...] = (kubernetes_checks,)


def run_checks(given: DoctorInput) -> list[Check]:
    found = [check(given) for check in CHECKS]
    return [check for check in found if check is not None] + [
        check for checks in KUBERNETES_CHECKS for check in checks(given)
    ]


def report(checks: list[Check], as_json: bool) -> str:
    if as_json:  # JSON lines, as every command's --json (docs/cli.md)
        return "\n".join(json.dumps(check.as_json()) for check in checks)
    return "\n".join(check.line() for check in checks)


def all_required_hold(checks: list[Check]) -> bool:
    return all(check.ok for check in checks if check.required)
