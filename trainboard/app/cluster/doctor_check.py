"""What `trainboard doctor` was given and what each of its checks found (doctor.py, doctor_kubernetes.py)."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any

from trainboard.app.cluster.settings import ClusterSettings

HTTP_SECONDS = 10


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str  # what was found
    fix: str = ""  # what to do, when not ok
    required: bool = True  # a failed optional check is reported and does not fail the command

    def line(self) -> str:
        mark = "ok  " if self.ok else "FAIL" if self.required else "warn"
        fix = f"\n      -> {self.fix}" if not self.ok and self.fix else ""
        return f"{mark} {self.name}: {self.detail}{fix}"

    def as_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DoctorInput:
    settings: ClusterSettings
    root: str
    mlflow_tracking_uri: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)  # --param's, typed: workers, model_registry...
    serving: bool = False  # manifests/components/serving applied: KServe's InferenceService is checked


def optional_server_answers(name: str, request: urllib.request.Request, *, fix: str) -> Check:
    """An optional server (MLflow, the Model Registry: runs go on without it) answers ``request`` within
    HTTP_SECONDS; its first 100 bytes are in the line."""
    try:
        with urllib.request.urlopen(request, timeout=HTTP_SECONDS) as response:
            answer = response.read(100).decode(errors="replace").strip()
    except (OSError, urllib.error.URLError) as e:
        reason = getattr(e, "reason", e)
        return Check(name, False, f"{request.full_url}: {reason}", fix, required=False)
    return Check(name, True, f"{request.full_url} answers ({answer})")
