"""A loopback stand-in for the Kubeflow Model Registry's REST API, checked against its OpenAPI document.

Its routes are those of tests/openapi/model-registry-v0.3.8.yaml (kubeflow/hub v0.3.8,
api/openapi/model-registry.yaml, API /api/model_registry/v1alpha3): a request to any other route is a
404 and recorded as a miss; each request body is validated (jsonschema, $refs resolved in the document)
against its route's requestBody schema and each answer against the route's response schema, and a
mismatch is recorded in ``problems`` (and answered 400 for a request). It keeps what is created in memory.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import yaml

OPENAPI = Path(__file__).parent.parent / "openapi" / "model-registry-v0.3.8.yaml"
_DOC: dict[str, Any] = yaml.safe_load(OPENAPI.read_text())
_JSON = "application/json"


def _schema(ref_or_schema: dict[str, Any]) -> dict[str, Any]:
    """A schema that jsonschema resolves against the document (its #/components/... $refs)."""
    return {**ref_or_schema, "components": _DOC["components"]}


def _deref(node: dict[str, Any]) -> dict[str, Any]:
    """A response or request body object with its own $ref followed (#/components/responses/X)."""
    while "$ref" in node:
        target: Any = _DOC
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _routes() -> list[tuple[str, re.Pattern[str], dict[str, Any]]]:
    routes = []
    for path, operations in _DOC["paths"].items():
        pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$")
        routes += [(method.upper(), pattern, op) for method, op in operations.items() if "operationId" in op]
    return routes


_ROUTES = _routes()


class ModelRegistryStandIn:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.requests: list[tuple[str, str]] = []  # (operationId, path)
        self.authorizations: set[str] = set()  # the Authorization headers it was sent
        self.objects: dict[str, dict[str, Any]] = {}  # id -> registered model, version or artifact
        self.hang = threading.Event()  # set: every request waits until the server stops
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> ModelRegistryStandIn:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.hang.clear()
        self._server.shutdown()
        self._server.server_close()

    def versions(self) -> dict[str, dict[str, Any]]:
        """The model versions by name."""
        return {o["name"]: o for o in self.objects.values() if o.get("_kind") == "version"}

    def artifacts(self) -> list[dict[str, Any]]:
        return [o for o in self.objects.values() if o.get("_kind") == "artifact"]

    def _new(self, kind: str, body: dict[str, Any], **extra: Any) -> dict[str, Any]:
        with self._lock:
            ident = str(len(self.objects) + 1)
            stamp = "1700000000000"
            self.objects[ident] = {**body, **extra, "id": ident, "_kind": kind}
            self.objects[ident].setdefault("createTimeSinceEpoch", stamp)
            self.objects[ident].setdefault("lastUpdateTimeSinceEpoch", stamp)
            return self.objects[ident]

    def _find(self, kind: str, query: dict[str, str]) -> dict[str, Any] | None:
        parent = query.get("parentResourceId", "")
        return next(
            (
                o
                for o in self.objects.values()
                if o.get("_kind") == kind
                and o.get("name") == query.get("name")
                and (not parent or o.get("registeredModelId") == parent)
            ),
            None,
        )

    def answer(self, operation: str, params: dict[str, str], query: dict[str, str], body: Any) -> Any:
        """(status, body) for an operation of the document."""
        if operation == "getRegisteredModels":
            items = [o for o in self.objects.values() if o["_kind"] == "registered"]
            return 200, {"items": items, "size": len(items), "pageSize": 100, "nextPageToken": ""}
        if operation in ("findRegisteredModel", "findModelVersion"):
            found = self._find("registered" if operation == "findRegisteredModel" else "version", query)
            return (200, found) if found else (404, {"code": "404", "message": "not found"})
        if operation == "createRegisteredModel":
            return 201, self._new("registered", body, state="LIVE")
        if operation == "createModelVersion":
            return 201, self._new("version", body, state="LIVE")
        if operation == "createRegisteredModelVersion":
            return 201, self._new(
                "version", body, registeredModelId=params["registeredmodelId"], state="LIVE"
            )
        if operation == "upsertModelVersionArtifact":
            return 201, self._new("artifact", body, modelVersionId=params["modelversionId"])
        if operation == "updateModelVersion":
            found = self.objects.get(params["modelversionId"])
            if not found:
                return 404, {"code": "404", "message": "not found"}
            found.update(body)
            return 200, found
        if operation == "getModelVersion":
            found = self.objects.get(params["modelversionId"])
            return (200, found) if found else (404, {"code": "404", "message": "not found"})
        return 501, {"code": "501", "message": f"{operation} is not in this stand-in"}

    def _check(self, what: str, schema: dict[str, Any], value: Any) -> str:
        chosen = _deref(schema)
        if "discriminator" in chosen and isinstance(value, dict):
            # OpenAPI's discriminator picks the one schema of a oneOf (Artifact: by artifactType); JSON
            # Schema's oneOf alone would find the body valid under several.
            by = chosen["discriminator"]
            schema = {"$ref": by["mapping"].get(value.get(by["propertyName"]), "#/no-such-artifact-type")}
        try:
            jsonschema.validate(value, _schema(schema))
        except jsonschema.ValidationError as e:
            problem = f"{what}: {e.message}"
            self.problems.append(problem)
            return problem
        return ""

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def _serve(self) -> None:
                while stand_in.hang.is_set():
                    time.sleep(0.05)
                parts = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parts.query))
                route = next(
                    (
                        (op, m)
                        for method, p, op in _ROUTES
                        if method == self.command and (m := p.match(parts.path))
                    ),
                    None,
                )
                if route is None:
                    stand_in.problems.append(f"no such route: {self.command} {parts.path}")
                    return self._send(404, {"code": "404", "message": "no such route"})
                operation, match = route
                stand_in.requests.append((operation["operationId"], parts.path))
                stand_in.authorizations.add(self.headers.get("Authorization", ""))
                body = None
                if "requestBody" in operation:
                    length = int(self.headers.get("Content-Length") or 0)
                    body = json.loads(self.rfile.read(length) or b"null")
                    schema = _deref(operation["requestBody"])["content"][_JSON]["schema"]
                    if problem := stand_in._check(f"{operation['operationId']} request", schema, body):
                        return self._send(400, {"code": "400", "message": problem})
                status, answer = stand_in.answer(operation["operationId"], match.groupdict(), query, body)
                answer = {k: v for k, v in answer.items() if not k.startswith("_")}
                if "items" in answer:
                    answer["items"] = [
                        {k: v for k, v in i.items() if not k.startswith("_")} for i in answer["items"]
                    ]
                response = operation["responses"].get(str(status))
                if response is None:
                    stand_in.problems.append(f"{operation['operationId']}: {status} is not a declared answer")
                else:
                    schema = _deref(response)["content"][_JSON]["schema"]
                    stand_in._check(f"{operation['operationId']} answer {status}", schema, answer)
                self._send(status, answer)

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", _JSON)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = _serve

        return Handler
