"""A loopback Kubeflow Pipelines API: the v2beta1 routes kfp.Client and the kfp CLI call to submit and
schedule, answering like the real server and recording every request for the tests to assert on."""

from __future__ import annotations

import base64
import json
import math
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from tests.support.loopback import JSONHandler, LoopbackServer

API = "/apis/v2beta1"
CREATED_AT = "2026-01-01T00:00:00Z"


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No KFP settings from the developer's machine (kfp's context file, a service-account token, the
    endpoint): an autouse fixture of each test module that imports it."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(tmp_path / "no-sa-token"))
    for name in ("KF_PIPELINES_ENDPOINT", "KF_PIPELINES_TOKEN", "TRAINBOARD_CONFIG", "TRAINBOARD_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict | None


@dataclass
class KFPServer:
    """``token``: when set, every route answers 401 unless the request carries ``Bearer <token>``;
    ``basic`` ("USER:PASSWORD"), the same unless it carries them as HTTP basic auth.
    ``final_state``: what GET runs/ID answers (the run has finished).
    ``refusal``: when set, creating a run or a recurring run answers 400 with it (a server-side check).
    ``release`` and ``multi_user``: what healthz reports (tag_name, multi_user), as the real API server's
    handler does (backend/src/apiserver/main.go).
    ``delay``: seconds every route but healthz waits before it answers; ``math.inf``: no answer at all
    until stop() (a server whose health check answers while the rest stalls).
    ``wrong``: answers 200 OK with the given body, bytes as they are, anything else as JSON, to the
    routes named (method, path under API), in place of the right answer: bytes that are not UTF-8,
    JSON of the wrong shape, a run without its id."""

    token: str = ""
    basic: str = ""
    release: str = "2.14.3"
    multi_user: bool = False
    final_state: str = "SUCCEEDED"
    refusal: str = ""
    delay: float = 0.0
    wrong: dict[tuple[str, str], object] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    experiments: dict[str, dict] = field(default_factory=dict)
    runs: dict[str, dict] = field(default_factory=dict)
    recurring_runs: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._stopped = threading.Event()
        self._http = LoopbackServer(_handler(self))
        self.url = self._http.url

    def stop(self) -> None:
        self._stopped.set()  # a delayed request gives up: no test waits on it
        self._http.stop()

    def waits_out_delay(self, request: Request) -> bool:
        """Whether ``request`` waited out ``delay`` (False: the server stopped first; it gets no answer)."""
        if not self.delay or request.path == API + "/healthz":
            return True
        return not self._stopped.wait(None if math.isinf(self.delay) else self.delay)

    def bodies(self, method: str, path: str) -> list[dict]:
        return [r.body for r in self.requests if r.method == method and r.path == API + path]

    def answer(self, request: Request) -> tuple[int, object]:
        if self.token and request.headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"error": "Unauthorized", "code": 16}
        basic = "Basic " + base64.b64encode(self.basic.encode()).decode()
        if self.basic and request.headers.get("authorization") != basic:
            return 401, {"error": "Unauthorized", "code": 16}
        route = (request.method, request.path.removeprefix(API))
        if self.refusal and route in (("POST", "/runs"), ("POST", "/recurringruns")):
            return 400, {"error": self.refusal, "code": 3}
        if route in self.wrong:
            return 200, self.wrong[route]
        if route == ("GET", "/healthz"):
            return 200, {"commit_sha": "0" * 40, "tag_name": self.release, "multi_user": self.multi_user}
        if route == ("GET", "/experiments"):
            wanted = json.loads(request.query.get("filter", '{"predicates": []}'))["predicates"]
            names = [p["stringValue"] for p in wanted if p["key"] == "display_name"]
            found = [e for e in self.experiments.values() if not names or e["display_name"] in names]
            return 200, {"experiments": found, "total_size": len(found)} if found else {}
        if route == ("POST", "/experiments"):
            experiment = {**request.body, "experiment_id": f"exp-{len(self.experiments) + 1}"}
            experiment.update(created_at=CREATED_AT, storage_state="AVAILABLE")
            self.experiments[experiment["experiment_id"]] = experiment
            return 200, experiment
        if route == ("POST", "/runs"):
            run = {**request.body, "run_id": f"run-{len(self.runs) + 1}", "state": "PENDING"}
            run.update(created_at=CREATED_AT)
            self.runs[run["run_id"]] = run
            return 200, run
        if request.method == "GET" and request.path.startswith(f"{API}/runs/"):
            run = self.runs.get(request.path.rsplit("/", 1)[-1])
            return (200, {**run, "state": self.final_state}) if run else (404, {"error": "no such run"})
        if route == ("POST", "/recurringruns"):
            number = len(self.bodies("POST", "/recurringruns"))  # 1, 2, ...: never reused
            recurring = {**request.body, "recurring_run_id": f"recurring-{number}", "status": "ENABLED"}
            recurring.update(created_at=CREATED_AT)
            self.recurring_runs[recurring["recurring_run_id"]] = recurring
            return 200, recurring
        if route == ("GET", "/recurringruns"):
            found = [
                r
                for r in self.recurring_runs.values()
                if r.get("experiment_id") == request.query.get("experiment_id", r.get("experiment_id"))
            ]
            return 200, {"recurringRuns": found, "total_size": len(found)} if found else {}
        if request.path.startswith(f"{API}/recurringruns/"):
            target, _, action = request.path.rsplit("/", 1)[-1].partition(":")
            if target not in self.recurring_runs:
                return 404, {"error": f"no recurring run {target}", "code": 5}
            if request.method == "DELETE":
                del self.recurring_runs[target]
            elif request.method == "POST" and action in ("enable", "disable"):
                self.recurring_runs[target]["status"] = "ENABLED" if action == "enable" else "DISABLED"
            elif request.method != "GET":
                return 404, {"error": f"no route {request.method} {request.path}"}
            return 200, self.recurring_runs.get(target, {})
        return 404, {"error": f"no route {request.method} {request.path}"}


def _handler(server: KFPServer) -> type[BaseHTTPRequestHandler]:
    class Handler(JSONHandler):
        def _serve(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            request = Request(
                method=self.command,
                path=url.path,
                query=dict(urllib.parse.parse_qsl(url.query)),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=json.loads(raw) if raw else None,
            )
            server.requests.append(request)
            if not server.waits_out_delay(request):
                return
            self.send_json(*server.answer(request))

        do_GET = do_POST = do_DELETE = _serve

    return Handler
