"""MLflow, live, against a real `mlflow server` on loopback: each epoch's metrics while training runs, the
test metrics, the confusion matrix and the decision after; a server down, mute or killed costs a bounded
few seconds and one warning, never the training."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler

import pytest

from tests.support.cli import last_json_line, trainboard
from tests.support.gcs import free_port
from tests.support.loopback import LoopbackServer
from tests.support.mlflow_server import MlflowServer
from tests.support.training import FAST
from trainboard import mlflow_log
from trainboard.components.train.core import train
from trainboard.mlflow_log import EXPERIMENT, RUN_TAG, MlflowLog

EPOCH_LOSS = "train/epoch_loss"


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    yield server
    server.stop()


def _mlflow_run(server: MlflowServer, run: str):
    client = server.client()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return None
    found = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{RUN_TAG}` = '{run}'")
    return found[0] if found else None


class _Watcher:
    """Polls the run's epoch_loss history from another thread while train() runs in this one; ``then``
    is called once with the server when the first epoch shows."""

    def __init__(self, server: MlflowServer, run: str, then=None):
        self.server, self.run, self.then = server, run, then
        self.seen: list[int] = []  # the epochs in MLflow at each poll
        self.training = True
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while self.training:
            try:
                found = _mlflow_run(self.server, self.run)
                history = (
                    self.server.client().get_metric_history(found.info.run_id, EPOCH_LOSS) if found else []
                )
            except Exception:  # killed on purpose
                return
            self.seen.append(len(history))
            if history and self.then:
                self.then, then = None, self.then
                then(self.server)
            time.sleep(0.2)

    def stop(self) -> list[int]:
        self.training = False
        self._thread.join(30)
        return self.seen


def test_each_epochs_metrics_are_in_mlflow_while_training_runs(
    mlflow_server, demo_data, tmp_path, monkeypatch
):
    monkeypatch.setenv(mlflow_log.TRACKING_URI_ENV, mlflow_server.url)
    monkeypatch.delenv(mlflow_log.RUN_ID_ENV, raising=False)
    watcher = _Watcher(mlflow_server, "live")
    info = train(
        demo_data, str(tmp_path / "model"), str(tmp_path / "root"), "live", config=replace(FAST, epochs=4)
    )
    seen = watcher.stop()
    assert any(0 < epochs < 4 for epochs in seen), f"only at the end: {seen}"
    found = _mlflow_run(mlflow_server, "live")
    client = mlflow_server.client()
    steps = [m.step for m in client.get_metric_history(found.info.run_id, EPOCH_LOSS)]
    assert steps == [1, 2, 3, 4] and info.epochs == 4
    accuracy = client.get_metric_history(found.info.run_id, "validation/epoch_accuracy")
    assert max(m.value for m in accuracy) == pytest.approx(info.best_val_accuracy)


def test_a_server_killed_mid_run_changes_nothing_but_a_warning(demo_data, tmp_path, monkeypatch, caplog):
    server = MlflowServer(tmp_path / "mlflow")
    try:
        monkeypatch.setenv(mlflow_log.TRACKING_URI_ENV, server.url)
        monkeypatch.delenv(mlflow_log.RUN_ID_ENV, raising=False)
        watcher = _Watcher(server, "killed", then=MlflowServer.kill)
        with caplog.at_level(logging.WARNING, logger=mlflow_log.__name__):
            info = train(
                demo_data,
                str(tmp_path / "model"),
                str(tmp_path / "root"),
                "killed",
                config=replace(FAST, epochs=5),
            )
        watcher.stop()
    finally:
        server.stop()
    assert server.proc.returncode == -9, "killed while training ran"
    assert info.epochs == 5 and (tmp_path / "model" / "model.keras").is_file()
    [warning] = [r.getMessage() for r in caplog.records if r.name == mlflow_log.__name__]
    assert server.url in warning and "goes on without MLflow" in warning


class _Mute(BaseHTTPRequestHandler):
    """Accepts and never answers, as a server stuck behind a load balancer."""

    def do_GET(self) -> None:
        time.sleep(60)

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("server", ["down", "mute"])
def test_a_server_down_or_mute_costs_a_few_bounded_seconds_and_one_warning(server, monkeypatch, caplog):
    mute = LoopbackServer(_Mute) if server == "mute" else None
    monkeypatch.setenv(mlflow_log.TRACKING_URI_ENV, mute.url if mute else f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger=mlflow_log.__name__):
        feed = MlflowLog.from_environment("unreachable")
        assert feed is not None
        for epoch in range(1, 50):
            feed.log_metrics({EPOCH_LOSS: 1.0 / epoch}, step=epoch)  # never waits for the server
        assert time.monotonic() - started < 0.5
        feed.set_tags({"trainboard.decision": "promoted"})
        feed.close()
    spent = time.monotonic() - started
    if mute:
        mute.stop()
    assert spent <= mlflow_log.CLOSE_SECONDS + 1
    assert len([r for r in caplog.records if r.name == mlflow_log.__name__]) == 1
    assert feed.failed


def test_nothing_is_logged_or_imported_without_a_tracking_uri(monkeypatch):
    monkeypatch.delenv(mlflow_log.TRACKING_URI_ENV, raising=False)
    assert MlflowLog.from_environment("run") is None


@pytest.mark.slow
def test_a_local_run_shows_its_epochs_test_metrics_picture_and_decision_in_mlflow(mlflow_server, tmp_path):
    env = {**__import__("os").environ, mlflow_log.TRACKING_URI_ENV: mlflow_server.url}
    env.pop(mlflow_log.RUN_ID_ENV, None)
    result = trainboard(
        "local",
        "--no-serve",
        "--json",
        "--root",
        str(tmp_path / "root"),
        "--epochs",
        "3",
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = last_json_line(result.stdout)
    found = _mlflow_run(mlflow_server, out["run"])
    client = mlflow_server.client()
    assert [m.step for m in client.get_metric_history(found.info.run_id, EPOCH_LOSS)] == [1, 2, 3]
    assert found.data.metrics["evaluation/test_accuracy"] == pytest.approx(out["metrics"]["test_accuracy"])
    assert found.data.tags["trainboard.decision"] == "promoted"
    assert found.data.tags["trainboard.champion"] == out["run"]
    assert found.info.status == "FINISHED"
    assert "confusion_matrix.png" in [a.path for a in client.list_artifacts(found.info.run_id)]


@pytest.mark.parametrize(
    ("option", "environment", "named"),
    [
        ("ftp://mlflow.example.com", "", "--mlflow-tracking-uri"),
        ("", "mlflow.example.com:5000", "MLFLOW_TRACKING_URI"),
    ],
    ids=["option", "environment"],
)
def test_a_local_run_with_a_tracking_uri_that_is_not_http_is_refused_before_any_work(
    option, environment, named, tmp_path, monkeypatch, capsys
):
    from tests.support.cli import in_process

    monkeypatch.setenv(mlflow_log.TRACKING_URI_ENV, environment)
    root = tmp_path / "root"
    given = ["--mlflow-tracking-uri", option] if option else []
    code, _, err = in_process(capsys, "local", "--no-serve", "--root", str(root), *given)
    assert code == 2 and named in err and "http:// or https://" in err
    assert len(err.strip().splitlines()) == 1 and not root.exists()


def test_a_local_runs_tracking_uri_option_reaches_its_steps_over_the_environments(
    tmp_path, monkeypatch, capsys
):
    from tests.support.cli import in_process
    from trainboard.app import local_run

    seen = []

    def stand_in_for_the_pipeline(*_args, **_kwargs):
        seen.append(__import__("os").environ.get(mlflow_log.TRACKING_URI_ENV))
        raise KeyboardInterrupt  # the pipeline's steps inherit this environment (kfp.local's subprocesses)

    monkeypatch.setenv(mlflow_log.TRACKING_URI_ENV, "http://elsewhere.example.com")
    monkeypatch.setattr(local_run, "run_local", stand_in_for_the_pipeline)
    root = str(tmp_path / "root")
    in_process(
        capsys, "local", "--no-serve", "--root", root, "--mlflow-tracking-uri", "http://127.0.0.1:5000"
    )
    assert seen == ["http://127.0.0.1:5000"]
