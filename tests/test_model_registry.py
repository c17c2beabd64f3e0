"""The Kubeflow Model Registry: a promotion registers its run as a version (the serving export's URI where
there is one, TensorFlow's format and version, the test accuracy, the data's fingerprint, the KFP run, the
TensorBoard link, the champion mark), a rollback moves the champion mark back, and a registry that is
down or mute costs a bounded time and one line in the report, the outcome and the notification, never
the promotion. Against tests/support/model_registry_server.py, whose routes and bodies are checked
against the registry's OpenAPI document at kubeflow/hub v0.3.8."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from tests.support.cli import in_process
from tests.support.model_registry_server import ModelRegistryStandIn
from tests.support.promotion import metrics_with_accuracy, model_folder
from trainboard import layout, model_registry
from trainboard.artifacts.outcome import read_outcome
from trainboard.components.notify.core import message
from trainboard.components.promote.core import promote
from trainboard.components.promote.report import report
from trainboard.config import PromotionRule
from trainboard.errors import UsageError


def promoted_model(tmp_path: Path, run: str, *, serving: bool) -> str:
    """A stand-in model of ``run`` with its data's fingerprint and, with ``serving``, a serving export."""
    folder = Path(model_folder(tmp_path, run))
    info = {"run": run, "settings": {"dataset_fingerprint": f"data-of-{run}"}}
    (folder / "trainboard_model.json").write_text(json.dumps(info))
    if serving:
        (folder / "serving" / "1").mkdir(parents=True)
        (folder / "serving" / "1" / "saved_model.pb").write_text(f"export of {run}")
    return str(folder)


def promote_to(url: str, root: str, tmp_path: Path, run: str, accuracy: float, *, serving: bool = True):
    rule = PromotionRule(model_registry=url)
    folder = promoted_model(tmp_path, run, serving=serving)
    links = (f"job-{run}", "https://tensorboard.example.com")
    return promote(root, run, folder, metrics_with_accuracy(accuracy), rule=rule, links=links)


def properties(version: dict) -> dict:
    """A version's custom properties as plain values (the API wraps each in a typed Metadata value)."""
    return {
        name: next(v for k, v in value.items() if k.endswith("_value"))
        for name, value in version.get("customProperties", {}).items()
    }


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_a_promotion_registers_its_run_as_a_version_and_moves_the_champion_mark(tmp_path, monkeypatch):
    monkeypatch.setenv(model_registry.TOKEN_ENV, "registry-token\n")  # the Secret's file, as mounted
    root = str(tmp_path / "root")
    with ModelRegistryStandIn() as registry:
        first = promote_to(registry.url, root, tmp_path, "r1", 0.8, serving=False)
        second = promote_to(registry.url, root, tmp_path, "r2", 0.9)
        assert first.promoted and second.promoted and not first.registry and not second.registry
        assert registry.problems == [], "every route and body as the OpenAPI document at v0.3.8 says"
        assert registry.authorizations == {"Bearer registry-token"}
        versions = registry.versions()
        artifacts = {a["modelVersionId"]: a for a in registry.artifacts()}
    assert set(versions) == {"r1", "r2"}
    r1, r2 = versions["r1"], versions["r2"]
    assert properties(r1)["champion"] is False and properties(r2)["champion"] is True
    assert properties(r2) == {
        "test_accuracy": pytest.approx(0.9),
        "data_fingerprint": "data-of-r2",
        "kfp_run": "job-r2",
        "tensorboard": properties(r2)["tensorboard"],
        "champion": True,
    }
    assert (
        properties(r2)["tensorboard"].startswith("https://tensorboard.example.com/?")
        and "r2" in (properties(r2)["tensorboard"])
    )
    # The serving export (a KServe storageUri) where the model has one, else the model's folder.
    assert artifacts[r2["id"]]["uri"] == f"{layout.model_dir(root, 'r2')}/serving"
    assert artifacts[r1["id"]]["uri"] == layout.model_dir(root, "r1")
    assert artifacts[r2["id"]]["modelFormatName"] == "tensorflow"
    assert artifacts[r2["id"]]["modelFormatVersion"] == model_registry.tensorflow_version() != "unknown"


def test_a_rollback_marks_the_earlier_version_champion_again(tmp_path, capsys):
    root = str(tmp_path / "root")
    with ModelRegistryStandIn() as registry:
        promote_to(registry.url, root, tmp_path, "r1", 0.8)
        promote_to(registry.url, root, tmp_path, "r2", 0.9)
        code, _, err = in_process(
            capsys, "champion", "rollback", "--to", "r1", "--root", root, "--model-registry", registry.url
        )
        assert code == 0, err
        assert registry.problems == []
        versions = registry.versions()
    assert properties(versions["r1"])["champion"] is True and properties(versions["r2"])["champion"] is False
    assert "version r1 marked champion" in err


@pytest.mark.parametrize("fault", ["down", "mute"])
def test_a_registry_that_fails_costs_bounded_time_and_one_line_never_the_promotion(
    fault, tmp_path, monkeypatch
):
    monkeypatch.setattr(model_registry, "REGISTRY_SECONDS", 1.0)
    root = str(tmp_path / "root")
    with ModelRegistryStandIn() as registry:
        if fault == "mute":
            registry.hang.set()
        url = registry.url if fault == "mute" else closed_port_url()
        started = time.monotonic()
        decision = promote_to(url, root, tmp_path, "r1", 0.8)
        elapsed = time.monotonic() - started
    assert decision.promoted and decision.champion == "r1"
    assert elapsed < 5, "bounded by REGISTRY_SECONDS"
    line = decision.registry
    assert line.startswith(f"Model Registry at {url}: version r1 not registered: ") and "\n" not in line
    if fault == "mute":
        assert line.endswith("no answer in 1 s")
    outcome = read_outcome(root, "r1")
    assert outcome is not None and outcome.registry == line
    assert line in report("r1", metrics_with_accuracy(0.8), decision, root)
    assert line in message("r1", outcome)["text"].splitlines()


def test_a_model_registry_that_is_not_an_http_url_is_refused_naming_it(tmp_path, capsys):
    root = str(tmp_path / "root")
    with pytest.raises(UsageError, match="model_registry"):
        promote_to("registry.example.com", root, tmp_path, "r1", 0.8)
    code, _, err = in_process(
        capsys, "champion", "rollback", "--to", "r1", "--root", root, "--model-registry", "ftp://x"
    )
    assert code == 2 and "model_registry" in err and "Traceback" not in err
