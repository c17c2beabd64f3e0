"""`trainboard doctor`'s Kubernetes checks: the team TensorBoard and its mirror, Trainer for workers > 1,
the notification Secret, GPU nodes, KServe with serving on, and the Model Registry where one is set.

Kubernetes access as the rest of trainboard has it (the `kubernetes` client: components/train/trainjob.py,
trainboard/serving_rollout.py use the pod's service account): inside a cluster the service account,
else kubectl's kubeconfig ($KUBECONFIG or ~/.kube/config, its current context), in the namespace of
--namespace, else the context's. Every check reads; none changes anything.
"""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path
from typing import Any

from trainboard import layout
from trainboard.app.cluster.doctor_check import Check, DoctorInput, optional_server_answers

DEPLOYMENT, MIRROR, MIRROR_ROOT_ENV = "trainboard-tensorboard", "bucket-mirror", "TRAINBOARD_LOGDIR"
TRAINER_CRD = "trainjobs.trainer.kubeflow.org"
KSERVE_CRD = "inferenceservices.serving.kserve.io"
APPLY = "apply the team TensorBoard: trainboard manifests --bucket ... --overlay ... | kubectl apply -f -"
_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def kubernetes_checks(given: DoctorInput) -> list[Check]:
    """Each Kubernetes check that applies to what was given, or one failed line when there is no access."""
    try:
        api, namespace = connect(given.settings.namespace)
    except Exception as e:  # no kubeconfig, a broken one: said as it is
        fix = "point kubectl at the cluster (KUBECONFIG, `kubectl config use-context`), or run it there"
        return [Check("Kubernetes", False, f"no access: {type(e).__name__}: {e}", fix)]
    parameters = given.parameters
    checks: list[Check | None] = [
        team_tensorboard(api, namespace, given.root),
        notification_secret(api, namespace),
    ]
    checks.append(gpu_nodes(api, parameters))
    if int(parameters.get("workers", 1)) > 1:
        checks += trainer(api, namespace)
    if given.serving:
        checks += serving(api, namespace)
    if parameters.get("model_registry"):
        checks.append(model_registry_answers(parameters["model_registry"]))
    return [check for check in checks if check is not None]


def connect(namespace: str) -> tuple[Any, str]:
    """(an ApiClient, the namespace): the pod's service account in a cluster, else the kubeconfig."""
    from kubernetes import client, config

    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
        return client.ApiClient(), namespace or Path(_NAMESPACE_FILE).read_text().strip()
    # Read now: the client reads $KUBECONFIG once, when it is imported (kubernetes/config/kube_config.py).
    kubeconfig = os.environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())
    api = config.new_client_from_config(config_file=kubeconfig)
    _, context = config.list_kube_config_contexts(config_file=kubeconfig)
    return api, namespace or context.get("context", {}).get("namespace") or "default"


def _read(call: Any, *args: Any) -> tuple[Any, str]:
    """(the object, "") or (None, why not: not found, forbidden, unreachable)."""
    from kubernetes.client.rest import ApiException

    try:
        return call(*args), ""
    except ApiException as e:
        return None, {404: "not found", 403: "this account may not read it"}.get(e.status, f"{e.status}")
    except Exception as e:  # unreachable API server
        return None, f"{type(e).__name__}: {e}"


def team_tensorboard(api: Any, namespace: str, root: str) -> Check:
    """The Deployment ready (its mirror's readiness probe is /healthz: ready means the mirror syncs) and
    its mirror reading this root's tensorboard/ (manifests/base/deployment.yaml, TRAINBOARD_LOGDIR)."""
    from kubernetes import client

    name = "team TensorBoard"
    found, why = _read(client.AppsV1Api(api).read_namespaced_deployment, DEPLOYMENT, namespace)
    if found is None:
        return Check(name, False, f"Deployment {namespace}/{DEPLOYMENT}: {why}", APPLY)
    mirror = next((c for c in found.spec.template.spec.containers if c.name == MIRROR), None)
    env = {e.name: e.value for e in (mirror.env or [])} if mirror else {}
    expected, reads = layout.tensorboard_root(root), env.get(MIRROR_ROOT_ENV, "")
    if reads.rstrip("/") != expected.rstrip("/"):
        fix = f"set logdir in manifests/base/settings.yaml to {expected} and apply again"
        return Check(name, False, f"its mirror reads {reads or 'nothing'}, not this root's {expected}", fix)
    wanted, ready = found.spec.replicas or 1, found.status.ready_replicas or 0
    if ready < wanted:
        fix = f"kubectl -n {namespace} describe deployment {DEPLOYMENT}: the mirror's /healthz or the image"
        return Check(name, False, f"{ready}/{wanted} replicas ready (TensorBoard and its mirror)", fix)
    return Check(name, True, f"{DEPLOYMENT} ready, its mirror healthy and reading {expected}")


def notification_secret(api: Any, namespace: str) -> Check:
    from kubernetes import client

    from trainboard.components.notify.core import SECRET_NAME, WEBHOOK_KEY

    found, why = _read(client.CoreV1Api(api).read_namespaced_secret, SECRET_NAME, namespace)
    if found is None:
        fix = f"kubectl -n {namespace} create secret generic {SECRET_NAME} --from-literal={WEBHOOK_KEY}=URL"
        return Check("notification", False, f"Secret {SECRET_NAME}: {why}", fix, required=False)
    return Check("notification", True, f"Secret {namespace}/{SECRET_NAME} exists")


def gpu_nodes(api: Any, parameters: dict) -> Check | None:
    """Nodes matching gpu_node_selector with the accelerator allocatable (none asked: no check)."""
    from kubernetes import client

    if str(parameters.get("accelerator_count", "1")) == "0":
        return None
    resource = parameters.get("accelerator_type", "nvidia.com/gpu")
    selector = ",".join(f"{k}={v}" for k, v in parameters.get("gpu_node_selector", {}).items())
    nodes, why = _read(lambda: client.CoreV1Api(api).list_node(label_selector=selector))
    if nodes is None:
        return Check("GPU nodes", False, f"nodes: {why}", "ask for read access to nodes, or check by hand")
    count = sum(int((n.status.allocatable or {}).get(resource, 0)) for n in nodes.items)
    matching = f"nodes matching {selector or '(any)'}"
    if count == 0:
        fix = "add a GPU node pool with these labels (or correct gpu_node_selector / accelerator_type)"
        return Check("GPU nodes", False, f"{len(nodes.items)} {matching}, no allocatable {resource}", fix)
    return Check("GPU nodes", True, f"{count} {resource} allocatable on {len(nodes.items)} {matching}")


def trainer(api: Any, namespace: str) -> list[Check]:
    """With workers > 1: Trainer's CRD, trainboard's ClusterTrainingRuntime, and TrainJobs manageable."""
    from kubernetes import client

    from trainboard.components.train.trainjob import GROUP, PLURAL, RUNTIME, VERSION

    crd, why = _read(client.ApiextensionsV1Api(api).read_custom_resource_definition, TRAINER_CRD)
    if crd is None:
        fix = "install Kubeflow Trainer (v2.3.0 or later), or train with workers=1"
        return [Check("Trainer", False, f"CRD {TRAINER_CRD}: {why}", fix)]
    objects = client.CustomObjectsApi(api)
    runtime, why = _read(
        objects.get_cluster_custom_object, GROUP, VERSION, "clustertrainingruntimes", RUNTIME
    )
    checks = [Check("Trainer", True, f"CRD {TRAINER_CRD} installed")]
    fix = "apply manifests/components/multi-worker (trainboard manifests ... | kubectl apply -f -)"
    checks.append(
        Check("Trainer runtime", True, f"ClusterTrainingRuntime {RUNTIME} installed")
        if runtime is not None
        else Check("Trainer runtime", False, f"ClusterTrainingRuntime {RUNTIME}: {why}", fix)
    )
    denied = [
        verb
        for verb in ("create", "get", "delete")
        if not _may(api, verb, namespace, group=GROUP, resource=PLURAL)
    ]
    checks.append(
        Check("TrainJobs", True, f"this account may create, get and delete {PLURAL} in {namespace}")
        if not denied
        else Check("TrainJobs", False, f"may not {', '.join(denied)} {PLURAL}.{GROUP} in {namespace}", fix)
    )
    return checks


def _may(api: Any, verb: str, namespace: str, *, group: str, resource: str) -> bool:
    """A SelfSubjectAccessReview: whether this account may ``verb`` the resource (in the cluster, the
    runner's own service account; from a laptop, the kubeconfig's user)."""
    from kubernetes import client

    attributes = client.V1ResourceAttributes(namespace=namespace, verb=verb, group=group, resource=resource)
    review = client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes)
    )
    answer, _ = _read(client.AuthorizationV1Api(api).create_self_subject_access_review, review)
    return bool(answer is not None and answer.status.allowed)


def serving(api: Any, namespace: str) -> list[Check]:
    """With serving on: KServe's CRD and the InferenceService manifests/components/serving applies."""
    from kubernetes import client

    from trainboard.serving_rollout import GROUP, NAME, PLURAL, VERSION

    crd, why = _read(client.ApiextensionsV1Api(api).read_custom_resource_definition, KSERVE_CRD)
    if crd is None:
        return [Check("KServe", False, f"CRD {KSERVE_CRD}: {why}", "install KServe (v0.15 or later)")]
    objects = client.CustomObjectsApi(api)
    service, why = _read(objects.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, NAME)
    fix = "apply manifests/components/serving with the team TensorBoard's overlay"
    return [
        Check("KServe", True, f"CRD {KSERVE_CRD} installed"),
        Check("InferenceService", True, f"{namespace}/{NAME} exists")
        if service is not None
        else Check("InferenceService", False, f"{namespace}/{NAME}: {why}", fix),
    ]


def model_registry_answers(url: str) -> Check:
    """The registry's API answers a listing with the token promote would use (optional: it never blocks)."""
    from trainboard import model_registry

    request = urllib.request.Request(
        f"{url.rstrip('/')}{model_registry.API_PATH}/registered_models?pageSize=1"
    )
    if token := model_registry.token():
        request.add_header("Authorization", f"Bearer {token}")
    fix = f"check model_registry and the Secret {model_registry.SECRET_NAME} (promotions go on without it)"
    return optional_server_answers("Model Registry", request, fix=fix)
