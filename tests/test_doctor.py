"""`trainboard doctor` against the loopback KFP API and fake GCS: each line holds where its piece is there,
and each fails, saying what to do, where it is not; the exit code says whether every required one holds."""

from __future__ import annotations

import json

import pytest

from tests.support.cli import in_process
from tests.support.gcs import BUCKET, free_port
from tests.support.kfp_server import KFPServer
from trainboard.app.cluster.connection import MIN_RELEASE

NEEDED = ".".join(map(str, MIN_RELEASE))


def _doctor(capsys, kfp: KFPServer, root: str, *more: str) -> tuple[int, dict[str, dict]]:
    code, out, _ = in_process(capsys, "doctor", "--endpoint", kfp.url, "--root", root, "--json", *more)
    return code, {check["name"]: check for check in map(json.loads, out.splitlines())}


def test_a_ready_cluster_passes_every_check_and_says_what_it_found(capsys, kfp, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code, out, _ = in_process(capsys, "doctor", "--endpoint", kfp.url, "--root", str(tmp_path / "root"))
    assert code == 0, out
    assert out.splitlines() == [
        f"ok   Kubeflow Pipelines: {kfp.url} answers: release 2.14.3 (trainboard needs >= {NEEDED})",
        f"ok   root: {tmp_path / 'root'} is writable from here",
    ]
    assert not list((tmp_path / "root").iterdir()), "the probe is gone again"


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


def test_a_root_in_a_bucket_is_checked_by_writing_there(capsys, kfp, gcs):
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
