"""A loopback stand-in of the Kubernetes API routes the train task's hand-off calls through the
`kubernetes` client (components/train/trainjob.py, handoff.py): the task's own pod, the TrainJob
custom-object routes (create, get, delete), the list of its pods and their logs. It answers as a real
API server does: 201 on create, 409 when the name exists, 404 for an unknown object or, with
``crd=False``, for the whole group (no Trainer installed), 403 with ``forbidden``. A TrainJob's
conditions come from ``on_created`` (the test's stand-in of Trainer's controller) or are set by the
test."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from kubernetes import client

from tests.support.loopback import JSONHandler, LoopbackServer

NAMESPACE = "team"
POD = "trainboard-train-pod"
TRAINJOBS = re.compile(r"/apis/trainer\.kubeflow\.org/v1alpha1/namespaces/([^/]+)/trainjobs(?:/([^/?]+))?")
PODS = re.compile(r"/api/v1/namespaces/([^/]+)/pods(?:/([^/?]+))?(/log)?")
OWN_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": POD, "namespace": NAMESPACE},
    "spec": {
        "containers": [
            {
                "name": "main",
                "image": "registry/trainboard@sha256:0123",
                "resources": {"limits": {"nvidia.com/gpu": "1"}},
            }
        ],
        "nodeSelector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "serviceAccountName": "pipeline-runner",
    },
}


@dataclass
class KubeAPI:
    url: str
    crd: bool = True  # False: the cluster has no trainer.kubeflow.org API
    forbidden: bool = False  # True: the service account may not touch trainjobs
    jobs: dict[str, dict] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    on_created: Callable[[dict], None] | None = None
    worker_pods: list[dict] = field(default_factory=list)  # the TrainJob's pods, as the list route shows them
    pod_logs: dict[str, str] = field(default_factory=dict)
    wrong: object = (
        None  # not None: every GET of a TrainJob answers 200 with it (bytes as they are, else JSON)
    )

    def clients(self) -> tuple[client.CustomObjectsApi, client.CoreV1Api]:
        configuration = client.Configuration()
        configuration.host = self.url
        api = client.ApiClient(configuration)
        return client.CustomObjectsApi(api), client.CoreV1Api(api)

    def finish(self, name: str, kind: str = "Complete", reason: str = "", message: str = "") -> None:
        condition = {"type": kind, "status": "True", "reason": reason, "message": message}
        self.jobs[name].setdefault("status", {}).setdefault("conditions", []).append(condition)

    def calls(self, method: str) -> list[str]:
        return [path for m, path in self.requests if m == method]


@contextlib.contextmanager
def kube_api() -> Iterator[KubeAPI]:
    box: list[KubeAPI] = []

    class Handler(JSONHandler):
        def _status(self, code: int, reason: str, message: str) -> None:
            self.send_json(
                code,
                {"kind": "Status", "status": "Failure", "reason": reason, "message": message, "code": code},
            )

        def _route(self, method: str) -> None:
            api = box[0]
            path = self.path.split("?")[0]
            api.requests.append((method, path))
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            if pod := PODS.fullmatch(path):
                if not pod[2]:  # the list (its label selector is the TrainJob's: the test sets the pods)
                    return self.send_json(
                        200, {"kind": "PodList", "apiVersion": "v1", "items": api.worker_pods}
                    )
                if pod[3]:
                    log = api.pod_logs.get(pod[2], "").encode()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(log)))
                    self.end_headers()
                    return self.wfile.write(log)
                if pod[2] != POD:
                    return self._status(404, "NotFound", "no pod")
                return self.send_json(200, OWN_POD)
            match = TRAINJOBS.fullmatch(path)
            if not match or not api.crd:
                return self._status(404, "NotFound", "the server could not find the requested resource")
            if api.forbidden:
                return self._status(
                    403,
                    "Forbidden",
                    f'trainjobs.trainer.kubeflow.org is forbidden: User "system:serviceaccount:'
                    f'{NAMESPACE}:pipeline-runner" cannot {method.lower()} resource "trainjobs"',
                )
            name = match[2]
            if method == "POST":
                name = body["metadata"]["name"]
                if name in api.jobs:
                    return self._status(409, "AlreadyExists", f'trainjobs "{name}" already exists')
                api.jobs[name] = body
                if api.on_created:
                    api.on_created(body)
                return self.send_json(201, body)
            if name not in api.jobs:
                return self._status(404, "NotFound", f'trainjobs "{name}" not found')
            if method == "DELETE":
                del api.jobs[name]
                return self.send_json(200, {"kind": "Status", "status": "Success"})
            return self.send_json(200, api.jobs[name] if api.wrong is None else api.wrong)

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_DELETE(self) -> None:
            self._route("DELETE")

    server = LoopbackServer(Handler)
    box.append(KubeAPI(server.url))
    try:
        yield box[0]
    finally:
        server.stop()
