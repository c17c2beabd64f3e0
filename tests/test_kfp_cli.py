"""docs/cluster.md's plain path: the kfp CLI itself (`kfp run create`, `kfp recurring-run create`) with the
compiled YAML, against the loopback KFP API. It also pins down the CLI's traps that trainboard's own
commands avoid: a schedule is DISABLED without --enabled, and parameters go out as the CLI parses them."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import BIN, trainboard
from tests.support.kfp_server import API, KFPServer

ROOT = "gs://team-bucket/trainboard"


@pytest.fixture(scope="module")
def pipeline_yaml(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("kfp-cli") / "pipeline.yaml"
    result = trainboard("compile", "-o", str(path))
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture
def server() -> Iterator[KFPServer]:
    kfp = KFPServer(token="s3cret")
    yield kfp
    kfp.stop()


def kfp_cli(server: KFPServer, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(tmp_path), "KF_PIPELINES_ENDPOINT": server.url}
    command = [str(BIN / "kfp"), "--existing-token", "s3cret", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def test_kfp_run_create_submits_the_compiled_pipeline(server, pipeline_yaml, tmp_path):
    result = kfp_cli(
        server, tmp_path, "run", "create", "-e", "trainboard", "-r", "nightly-1", "-f", str(pipeline_yaml),
        f"root={ROOT}", "dataset=demo", "epochs=3",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert {r.headers.get("authorization") for r in server.requests} == {"Bearer s3cret"}
    [run] = server.bodies("POST", "/runs")
    assert run["display_name"] == "nightly-1"
    assert run["runtime_config"]["parameters"] == {"root": ROOT, "dataset": "demo", "epochs": 3}
    assert run["pipeline_spec"]["pipeline_spec"]["pipelineInfo"]["name"] == "trainboard"
    assert "kubernetes" in run["pipeline_spec"]["platform_spec"]["platforms"]


@pytest.mark.parametrize(("enabled", "mode"), [(["--enabled"], "ENABLE"), ([], "DISABLE")])
def test_kfp_recurring_run_create_needs_enabled(server, pipeline_yaml, tmp_path, enabled, mode):
    result = kfp_cli(
        server, tmp_path, "recurring-run", "create",
        "--experiment-name", "trainboard", "--job-name", "nightly",
        "--pipeline-package-path", str(pipeline_yaml), "--cron-expression", "0 0 3 * * *",
        "--max-concurrency", "1", "--no-catchup", *enabled, f"root={ROOT}", "epochs=3",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [recurring] = server.bodies("POST", "/recurringruns")
    assert recurring["mode"] == mode
    assert recurring["trigger"] == {"cron_schedule": {"cron": "0 0 3 * * *"}}
    assert recurring["max_concurrency"] == 1 and recurring["no_catchup"] is True
    # The recurring-run command sends every parameter as a string; `trainboard schedule create` sends types.
    assert recurring["runtime_config"]["parameters"] == {"root": ROOT, "epochs": "3"}
    assert server.requests[0].path == f"{API}/healthz"
