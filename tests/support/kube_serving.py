"""A loopback stand-in of the Kubernetes API routes a serving rollout calls (trainboard/serving_rollout.py,
through the `kubernetes` client): get and patch (merge) of one InferenceService, as KServe v0.20.0's
CRD serves them: 404 when there is none, 403 when the account may not, a patch bumps
metadata.generation. Its status comes from ``on_patched``, the test's stand-in of KServe's controller."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from kubernetes import client

from tests.support.loopback import JSONHandler, LoopbackServer

NAMESPACE = "team"
ROUTE = re.compile(r"/apis/serving\.kserve\.io/v1beta1/namespaces/([^/]+)/inferenceservices/([^/?]+)")


def merge(target: dict, patch: dict) -> dict:
    """RFC 7386 JSON merge patch."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = value
    return target


def ready(service: dict, revision: str) -> None:
    """What KServe's controller writes once a new revision serves."""
    service["status"] = {
        "observedGeneration": service["metadata"]["generation"],
        "conditions": [{"type": "Ready", "status": "True"}],
        "components": {"predictor": {"latestCreatedRevision": revision, "latestReadyRevision": revision}},
    }


def failed(service: dict, reason: str, message: str) -> None:
    service["status"] = {
        "observedGeneration": service["metadata"]["generation"],
        "conditions": [{"type": "Ready", "status": "False", "reason": reason, "message": message}],
        "components": {"predictor": {"latestCreatedRevision": "r2", "latestReadyRevision": "r1"}},
    }


@dataclass
class ServingAPI:
    url: str
    services: dict[str, dict] = field(default_factory=dict)
    forbidden: bool = False
    on_patched: Callable[[dict], None] | None = None
    patches: list[dict] = field(default_factory=list)

    def client(self) -> client.CustomObjectsApi:
        configuration = client.Configuration()
        configuration.host = self.url
        return client.CustomObjectsApi(client.ApiClient(configuration))


@contextlib.contextmanager
def serving_api() -> Iterator[ServingAPI]:
    box: list[ServingAPI] = []

    class Handler(JSONHandler):
        def _status(self, code: int, reason: str) -> None:
            self.send_json(code, {"kind": "Status", "status": "Failure", "reason": reason, "code": code})

        def _route(self, method: str) -> None:
            api = box[0]
            match = ROUTE.fullmatch(self.path.split("?")[0])
            if api.forbidden:
                return self._status(403, "Forbidden")
            if not match or match[2] not in api.services:
                return self._status(404, "NotFound")
            service = api.services[match[2]]
            if method == "PATCH":
                assert self.headers["Content-Type"] == "application/merge-patch+json", self.headers
                patch = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.patches.append(patch)
                merge(service, patch)
                service["metadata"]["generation"] += 1
                service.pop("status", None)
                if api.on_patched:
                    api.on_patched(service)
            self.send_json(200, service)

        def do_GET(self) -> None:
            self._route("GET")

        def do_PATCH(self) -> None:
            self._route("PATCH")

    server = LoopbackServer(Handler)
    box.append(ServingAPI(server.url))
    try:
        yield box[0]
    finally:
        server.stop()
