"""`trainboard doctor` against the loopback KFP and Kubernetes APIs and fake GCS: each line holds where its
piece is there, and each fails, saying what to do, where it is not; the exit code says whether every
required one holds."""

from __future__ import annotations

import json

import pytest

from tests.support.cli import in_process
from tests.support.gcs import BUCKET, free_port
from tests.support.kfp_server import KFPServer
from tests.support.kube_cluster import (
    GPU_LABEL,
    NAMESPACE,
    KubeCluster,
    deployment,
    kube_cluster,
    ready_cluster,
)
from tests.support.model_registry_server import ModelRegistryStandIn
from trainboard.app.cluster.connection import MIN_RELEASE

NEEDED = ".".join(map(str, MIN_RELEASE))

FULL = ["--param", "workers=2", "--param", f"gpu_node_selector={json.dumps(GPU_LABEL)}", "--serving"]


@pytest.fixture(autouse=True)
def cluster(tmp_path, monkeypatch):
    """A cluster that holds everything, for the root tmp_path (the root most tests give), as kubectl's
    current context."""
    with kube_cluster() as stand_in:
        ready_cluster(stand_in, str(tmp_path))
        monkeypatch.setenv("KUBECONFIG", str(stand_in.kubeconfig(tmp_path.parent)))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        yield stand_in


def _doctor(capsys, kfp: KFPServer, root: str, *more: str) -> tuple[int, dict[str, dict]]:
    code, out, _ = in_process(capsys, "doctor", "--endpoint", kfp.url, "--root", root, "--json", *more)
    return code, {check["name"]: check for check in map(json.loads, out.splitlines())}


def test_a_ready_cluster_passes_every_check_and_says_what_it_found(
    capsys, kfp, tmp_path, monkeypatch, cluster
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code, out, _ = in_process(capsys, "doctor", "--endpoint", kfp.url, "--root", str(tmp_path), *FULL)
    assert code == 0, out
    assert cluster.problems == [], "the objects and reviews as Kubernetes 1.30's schemas say"
    assert out.splitlines() == [
        f"ok   Kubeflow Pipelines: {kfp.url} answers: release 2.14.3 (trainboard needs >= {NEEDED})",
        f"ok   root: {tmp_path} is writable from here",
        "ok   team TensorBoard: trainboard-tensorboard ready, its mirror healthy and reading "
        f"{tmp_path}/tensorboard",
        f"ok   notification: Secret {NAMESPACE}/trainboard-notify exists",
        "ok   GPU nodes: 1 nvidia.com/gpu allocatable on 1 nodes matching "
        "cloud.google.com/gke-accelerator=nvidia-l4",
        "ok   Trainer: CRD trainjobs.trainer.kubeflow.org installed",
        "ok   Trainer runtime: ClusterTrainingRuntime trainboard-tensorflow installed",
        f"ok   TrainJobs: this account may create, get and delete trainjobs in {NAMESPACE}",
        "ok   KServe: CRD inferenceservices.serving.kserve.io installed",
        f"ok   InferenceService: {NAMESPACE}/trainboard-champion exists",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["kubeconfig"] or not any(
        p.name.startswith(".trainboard-doctor") for p in tmp_path.iterdir()
    ), "the probe is gone again"


@pytest.mark.parametrize(
    ("server", "expected", "fix"),
    [
        (
            dict(release="2.13.0"),  # the release before the oldest trainboard runs on
            f"runs Kubeflow Pipelines 2.13.0; trainboard needs {NEEDED} or later",
            "upgrade an older",
        ),
        (dict(token="secret"), "answered 401", "--token"),
        (dict(multi_user=True), "multi-user Kubeflow", "--namespace"),
    ],
)
def test_a_kfp_endpoint_that_will_not_do_fails_its_line_with_the_fix(capsys, tmp_path, server, expected, fix):
    kfp = KFPServer(**server)
    try:
        code, checks = _doctor(capsys, kfp, str(tmp_path))
    finally:
        kfp.stop()
    assert code == 1
    check = checks["Kubeflow Pipelines"]
    assert not check["ok"] and expected in check["detail"] and fix in check["fix"]
    assert checks["root"]["ok"], "the other checks still run"


def test_an_unreachable_endpoint_fails_its_line(capsys, tmp_path):
    code, out, _ = in_process(
        capsys, "doctor", "--endpoint", f"http://127.0.0.1:{free_port()}", "--root", str(tmp_path)
    )
    assert code == 1
    assert "FAIL Kubeflow Pipelines: cannot reach" in out and "-> pass --endpoint" in out


def test_a_root_in_a_bucket_is_checked_by_writing_there(capsys, kfp, gcs, cluster):
    ready_cluster(cluster, f"gs://{BUCKET}/team")  # the board's mirror reads that root
    code, checks = _doctor(capsys, kfp, f"gs://{BUCKET}/team")
    assert code == 0 and checks["root"]["ok"]
    code, checks = _doctor(capsys, kfp, "gs://no-such-bucket/team")
    assert code == 1
    assert "bucket no-such-bucket does not exist" in checks["root"]["detail"]
    assert "can write" in checks["root"]["fix"]


def test_a_local_root_that_cannot_hold_files_fails_its_line(capsys, kfp, tmp_path):
    (tmp_path / "a-file").write_text("")
    code, checks = _doctor(capsys, kfp, str(tmp_path / "a-file" / "root"))
    assert code == 1 and "is a file" in checks["root"]["detail"]


def test_an_mlflow_server_that_does_not_answer_is_a_warning_not_a_failure(capsys, kfp, tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"
    code, checks = _doctor(capsys, kfp, str(tmp_path), "--mlflow-tracking-uri", uri)
    assert code == 0, "runs go on without MLflow"
    mlflow = checks["MLflow"]
    assert not mlflow["ok"] and not mlflow["required"] and "start the tracking server" in mlflow["fix"]


def _without(cluster: KubeCluster, piece: str) -> None:
    cluster.objects = {path: o for path, o in cluster.objects.items() if not path.endswith(piece)}


@pytest.mark.parametrize(
    ("take_away", "name", "expected", "fix", "required"),
    [
        (
            lambda c, root: _without(c, "/trainboard-tensorboard"),
            "team TensorBoard",
            "not found",
            "trainboard manifests",
            True,
        ),
        (
            lambda c, root: c.objects.update(
                {
                    f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/trainboard-tensorboard": deployment(
                        f"{root}/tensorboard", ready=0
                    )
                }
            ),
            "team TensorBoard",
            "0/1 replicas ready",
            "describe deployment",
            True,
        ),
        (
            lambda c, root: c.objects.update(
                {
                    f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/trainboard-tensorboard": deployment(
                        "gs://other/tensorboard"
                    )
                }
            ),
            "team TensorBoard",
            "its mirror reads gs://other/tensorboard, not this root's",
            "settings.yaml",
            True,
        ),
        (
            lambda c, root: _without(c, "/trainboard-notify"),
            "notification",
            "Secret trainboard-notify: not found",
            "create secret generic trainboard-notify",
            False,
        ),
        (lambda c, root: c.nodes.pop(0), "GPU nodes", "0 nodes matching", "GPU node pool", True),
        (
            lambda c, root: _without(c, "/trainjobs.trainer.kubeflow.org"),
            "Trainer",
            "not found",
            "install Kubeflow Trainer",
            True,
        ),
        (
            lambda c, root: _without(c, "/trainboard-tensorflow"),
            "Trainer runtime",
            "not found",
            "multi-worker",
            True,
        ),
        (
            lambda c, root: c.allowed.clear(),
            "TrainJobs",
            "may not create, get, delete trainjobs",
            "multi-worker",
            True,
        ),
        (
            lambda c, root: _without(c, "/inferenceservices.serving.kserve.io"),
            "KServe",
            "not found",
            "install KServe",
            True,
        ),
        (
            lambda c, root: _without(c, "/trainboard-champion"),
            "InferenceService",
            "not found",
            "components/serving",
            True,
        ),
    ],
    ids=[
        "no-board",
        "board-not-ready",
        "board-reads-another-root",
        "no-secret",
        "no-gpu-node",
        "no-trainer",
        "no-runtime",
        "no-rights",
        "no-kserve",
        "no-inferenceservice",
    ],
)
def test_each_missing_kubernetes_piece_fails_its_line_with_the_fix(
    capsys, kfp, tmp_path, cluster, take_away, name, expected, fix, required
):
    take_away(cluster, str(tmp_path))
    code, checks = _doctor(capsys, kfp, str(tmp_path), *FULL)
    check = checks[name]
    assert not check["ok"] and expected in check["detail"] and fix in check["fix"], check
    assert check["required"] == required and code == (1 if required else 0)
    assert all(c["ok"] for other, c in checks.items() if other != name), "only that line fails"


def test_trainer_and_kserve_are_checked_only_when_the_run_needs_them(capsys, kfp, tmp_path, cluster):
    cluster.objects.clear()
    cluster.allowed.clear()
    code, checks = _doctor(capsys, kfp, str(tmp_path))
    assert not {"Trainer", "Trainer runtime", "TrainJobs", "KServe", "InferenceService"} & set(checks)
    assert not checks["team TensorBoard"]["ok"] and code == 1


def test_without_access_to_kubernetes_one_line_says_how_to_get_it(capsys, kfp, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    code, checks = _doctor(capsys, kfp, str(tmp_path), *FULL)
    assert (
        code == 1
        and not checks["Kubernetes"]["ok"]
        and "kubectl config use-context" in checks["Kubernetes"]["fix"]
    )
    assert "team TensorBoard" not in checks


def test_a_model_registry_that_does_not_answer_is_a_warning_and_one_that_does_holds(capsys, kfp, tmp_path):
    with ModelRegistryStandIn() as registry:
        code, checks = _doctor(capsys, kfp, str(tmp_path), "--param", f"model_registry={registry.url}")
        assert code == 0 and checks["Model Registry"]["ok"] and registry.problems == []
    down = f"http://127.0.0.1:{free_port()}"
    code, checks = _doctor(capsys, kfp, str(tmp_path), "--param", f"model_registry={down}")
    found = checks["Model Registry"]
    assert (
        code == 0
        and not found["ok"]
        and not found["required"]
        and "trainboard-model-registry" in found["fix"]
    )
