"""A loopback stand-in of the Kubernetes API routes `trainboard doctor` reads (trainboard/app/cluster/
doctor_kubernetes.py, through the `kubernetes` client 30.1.0, Kubernetes 1.30's API): objects by their
API path (GET: the object or a 404 Status), the node list with its labelSelector, and
SelfSubjectAccessReviews answered from ``allowed``. Each built-in object it serves and each review it is
sent is validated against Kubernetes 1.30's schemas (kubernetes-validate), a mismatch recorded in
``problems``. A kubeconfig for it makes the client find it as kubectl would. ``ready_cluster`` holds
everything a run needs; a test takes a piece away."""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import kubernetes_validate

from tests.support.loopback import JSONHandler, LoopbackServer

NAMESPACE = "team"
KUBERNETES_VERSION = "1.30"  # the API of the kubernetes client 30.1.0 that trainboard uses
BUILT_IN = ("v1", "apps/v1", "apiextensions.k8s.io/v1", "authorization.k8s.io/v1")
GPU_LABEL = {"cloud.google.com/gke-accelerator": "nvidia-l4"}


def crd(name: str) -> dict:
    plural, group = name.split(".", 1)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "spec": {
            "group": group,
            "names": {"plural": plural, "kind": plural.title()},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": True, "storage": True}],
        },
    }


def deployment(logdir: str, *, ready: int = 1) -> dict:
    """manifests/base/deployment.yaml's shape: TensorBoard and its bucket mirror reading ``logdir``."""
    containers = [
        {"name": "tensorboard", "image": "trainboard-tensorboard"},
        {
            "name": "bucket-mirror",
            "image": "trainboard-tensorboard",
            "env": [{"name": "TRAINBOARD_LOGDIR", "value": logdir}],
        },
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "trainboard-tensorboard", "namespace": NAMESPACE},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "tb"}},
            "template": {"metadata": {"labels": {"app": "tb"}}, "spec": {"containers": containers}},
        },
        "status": {"replicas": 1, "readyReplicas": ready},
    }


def node(name: str, labels: dict, gpus: int) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "status": {"allocatable": {"cpu": "8", "nvidia.com/gpu": str(gpus)}},
    }


@dataclass
class KubeCluster:
    url: str
    objects: dict[str, dict] = field(default_factory=dict)  # API path -> object
    nodes: list[dict] = field(default_factory=list)
    allowed: set[tuple[str, str]] = field(default_factory=set)  # (verb, resource) this account may
    problems: list[str] = field(default_factory=list)

    def check(self, obj: dict) -> None:
        if obj.get("apiVersion") in BUILT_IN:
            try:
                kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as e:
                self.problems.append(f"{obj['kind']}: {e.message}")

    def kubeconfig(self, folder: Path) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "stand-in", "cluster": {"server": self.url}}],
            "users": [{"name": "me", "user": {"token": "kube-token"}}],
            "contexts": [
                {"name": "team", "context": {"cluster": "stand-in", "user": "me", "namespace": NAMESPACE}}
            ],
            "current-context": "team",
        }
        path = folder / "kubeconfig"
        path.write_text(json.dumps(config))
        return path


def ready_cluster(cluster: KubeCluster, root: str) -> None:
    """Everything a run with workers > 1, GPUs and serving needs, for the root ``root``."""
    ns, crds = f"namespaces/{NAMESPACE}", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    cluster.objects.update(
        {
            f"/apis/apps/v1/{ns}/deployments/trainboard-tensorboard": deployment(f"{root}/tensorboard"),
            f"/api/v1/{ns}/secrets/trainboard-notify": {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "trainboard-notify"},
            },
            f"{crds}/trainjobs.trainer.kubeflow.org": crd("trainjobs.trainer.kubeflow.org"),
            "/apis/trainer.kubeflow.org/v1alpha1/clustertrainingruntimes/trainboard-tensorflow": {
                "apiVersion": "trainer.kubeflow.org/v1alpha1",
                "kind": "ClusterTrainingRuntime",
                "metadata": {"name": "trainboard-tensorflow"},
            },
            f"{crds}/inferenceservices.serving.kserve.io": crd("inferenceservices.serving.kserve.io"),
            f"/apis/serving.kserve.io/v1beta1/{ns}/inferenceservices/trainboard-champion": {
                "apiVersion": "serving.kserve.io/v1beta1",
                "kind": "InferenceService",
                "metadata": {"name": "trainboard-champion"},
            },
        }
    )
    cluster.nodes[:] = [node("gpu-1", GPU_LABEL, 1), node("cpu-1", {}, 0)]
    cluster.allowed |= {(verb, "trainjobs") for verb in ("create", "get", "delete")}


def _matches(labels: dict, selector: str) -> bool:
    wanted = dict(pair.split("=", 1) for pair in selector.split(",") if pair)
    return all(labels.get(k) == v for k, v in wanted.items())


@contextlib.contextmanager
def kube_cluster() -> Iterator[KubeCluster]:
    box: list[KubeCluster] = []

    class Handler(JSONHandler):
        def do_GET(self) -> None:
            cluster = box[0]
            parts = urllib.parse.urlsplit(self.path)
            if parts.path == "/api/v1/nodes":
                selector = dict(urllib.parse.parse_qsl(parts.query)).get("labelSelector", "")
                items = [n for n in cluster.nodes if _matches(n["metadata"]["labels"], selector)]
                for item in items:
                    cluster.check(item)
                return self.send_json(
                    200, {"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": items}
                )
            found = cluster.objects.get(parts.path)
            if found is None:
                return self.send_json(
                    404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404}
                )
            cluster.check(found)
            self.send_json(200, found)

        def do_POST(self) -> None:
            cluster = box[0]
            assert self.path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", self.path
            review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            cluster.check(review)
            attributes = review["spec"]["resourceAttributes"]
            allowed = (attributes["verb"], attributes["resource"]) in cluster.allowed
            self.send_json(201, {**review, "status": {"allowed": allowed}})

    server = LoopbackServer(Handler)
    box.append(KubeCluster(server.url))
    try:
        yield box[0]
    finally:
        server.stop()
