"""Kubeflow Trainer's progress: the chief's updates reach a loopback HTTPS status server with its own CA,
with the token as the file says at each request, at most once per interval, and never hold an epoch."""

from __future__ import annotations

import itertools
import logging
import os
import time

import pytest

from tests.support.gcs import free_port
from tests.support.https_receiver import HTTPSReceiver
from trainboard.components.train import trainer_progress
from trainboard.components.train.live_feeds import tensorboard_names
from trainboard.components.train.trainer_progress import TrainerProgress

INTERVAL = 0.5  # the 5 s of the status server's documented limit, scaled down for the test


@pytest.fixture
def receiver(tmp_path, monkeypatch):
    server = HTTPSReceiver(tmp_path)
    token = tmp_path / "token"
    token.write_text("first-token\n")
    monkeypatch.setenv(trainer_progress.URL_ENV, f"{server.url}/apis/trainer.kubeflow.org/v1alpha1/x/status")
    monkeypatch.setenv(trainer_progress.CA_CERT_ENV, str(server.ca_file))
    monkeypatch.setenv(trainer_progress.TOKEN_ENV, str(token))
    yield server, token
    server.stop()


def _epoch(progress: TrainerProgress, epoch: int, loss: float) -> float:
    """One epoch's callbacks; returns the seconds the epoch's end took."""
    progress.on_epoch_begin(epoch)
    started = time.monotonic()
    progress.on_epoch_end(epoch, {"loss": loss, "val_accuracy": 0.5})
    return time.monotonic() - started


def _wait_for(condition, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_progress_eta_and_metrics_reach_the_status_server_with_the_current_token(receiver):
    server, token = receiver
    progress = TrainerProgress(
        os.environ[trainer_progress.URL_ENV],
        4,
        names=tensorboard_names,
        min_interval=INTERVAL,
    )
    _epoch(progress, 0, 1.0)
    _wait_for(lambda: len(server.received) == 1)
    token.write_text("rotated-token\n")  # the projected token rotates: the next request reads it again
    time.sleep(0.1)
    _epoch(progress, 1, 0.5)
    progress.close()
    first, second = server.received
    assert first.path == "/apis/trainer.kubeflow.org/v1alpha1/x/status"
    assert (first.authorization, second.authorization) == ("Bearer first-token", "Bearer rotated-token")
    status = second.body["trainerStatus"]
    assert status["progressPercentage"] == 50
    assert 0 <= status["estimatedRemainingSeconds"] <= 5  # two epochs of a fraction of a second each to go
    assert {"name": "train/epoch_loss", "value": "0.5"} in status["metrics"]
    assert {"name": "validation/epoch_accuracy", "value": "0.5"} in status["metrics"]
    assert second.at - first.at >= INTERVAL * 0.95


def test_updates_come_at_most_once_per_interval_and_the_last_one_is_sent(receiver):
    server, _ = receiver
    progress = TrainerProgress(os.environ[trainer_progress.URL_ENV], 10, min_interval=INTERVAL)
    for epoch in range(10):  # ten epochs in about a second: most updates are superseded before they go
        _epoch(progress, epoch, 1.0 / (epoch + 1))
        time.sleep(0.1)
    progress.close()
    times = [r.at for r in server.received]
    assert 2 <= len(times) < 10
    assert all(b - a >= INTERVAL * 0.95 for a, b in itertools.pairwise(times))
    assert server.received[-1].body["trainerStatus"]["progressPercentage"] == 100


@pytest.mark.parametrize("problem", ["nothing listening", "unknown CA", "refused"])
def test_a_failing_status_server_never_holds_an_epoch_and_warns_once(
    problem, receiver, tmp_path, caplog, monkeypatch
):
    server, _ = receiver
    url = os.environ[trainer_progress.URL_ENV]
    if problem == "nothing listening":
        url = f"https://127.0.0.1:{free_port()}/status"
    if problem == "unknown CA":
        other = tmp_path / "other"
        other.mkdir()
        monkeypatch.setenv(trainer_progress.CA_CERT_ENV, str(HTTPSReceiver(other).ca_file))
    if problem == "refused":
        refusing = (tmp_path / "refusing").mkdir() or HTTPSReceiver(tmp_path / "refusing", status=403)
        url = refusing.url + "/status"
        monkeypatch.setenv(trainer_progress.CA_CERT_ENV, str(refusing.ca_file))
    with caplog.at_level(logging.WARNING, logger=trainer_progress.__name__):
        progress = TrainerProgress(url, 3, min_interval=0.05)
        spent = [_epoch(progress, epoch, 1.0) for epoch in range(3)]
        time.sleep(0.3)
        started = time.monotonic()
        progress.close()
    assert max(spent) < 0.05, "an epoch's end never waits for the server"
    assert time.monotonic() - started <= trainer_progress.CLOSE_SECONDS
    assert not server.received
    [warning] = [r.getMessage() for r in caplog.records if r.name == trainer_progress.__name__]
    assert "training goes on" in warning


def test_outside_a_trainjob_nothing_is_sent(monkeypatch):
    monkeypatch.delenv(trainer_progress.URL_ENV, raising=False)
    assert TrainerProgress.from_environment(3) is None


def test_a_trainjobs_chief_reports_its_epochs_and_ends_at_100_percent(receiver, demo_data, tmp_path):
    from dataclasses import replace

    from tests.support.training import FAST
    from trainboard.components.train.core import train

    server, _ = receiver
    info = train(
        demo_data, str(tmp_path / "model"), str(tmp_path / "root"), "progress", config=replace(FAST, epochs=2)
    )
    statuses = [r.body["trainerStatus"] for r in server.received]
    assert info.epochs == 2 and statuses, "the first epoch's update goes at once"
    assert statuses[-1]["progressPercentage"] == 100 and statuses[-1]["estimatedRemainingSeconds"] == 0
    assert "validation/epoch_accuracy" in {m["name"] for m in statuses[-1]["metrics"]}
