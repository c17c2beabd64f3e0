"""MLflow, live: what train, evaluate and promote log to an MLflow run where MLFLOW_TRACKING_URI is set.

Kubeflow Pipelines 2.17's MLflow integration (kubeflow/pipelines#13441, backend/src/v2 plugins/mlflow)
makes each task an MLflow run and sets ``MLFLOW_TRACKING_URI`` and ``MLFLOW_RUN_ID`` in the task's
container, but logs scalars only when the task ends; this logs to that run as things happen (each epoch's
metrics, the test metrics and the confusion matrix, the promotion's decision). Without ``MLFLOW_RUN_ID``
(``trainboard local`` with only the URI set) the trainboard run is one MLflow run in the experiment named
after the pipeline, found again by its tag ``trainboard.run`` in each step.

Never at training's expense: every call goes through one background thread; a request waits at most
REQUEST_SECONDS and is not retried; the first failure is one warning and the rest of this process's
logging is dropped; ``close`` waits at most CLOSE_SECONDS. mlflow (the slim client, mlflow-skinny) is
imported in that thread as soon as a step makes its log (a step makes it when it starts, and logs as it
goes), so a process that logs nothing never imports it.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
RUN_ID_ENV = "MLFLOW_RUN_ID"
EXPERIMENT = "trainboard"  # the pipeline's name (pipelines/training_pipeline.py PIPELINE_NAME)
RUN_TAG = "trainboard.run"
TENSORBOARD_TAG = "trainboard.tensorboard"
REQUEST_SECONDS = 10
CLOSE_SECONDS = 10.0

_Call = Callable[[Any, str], None]  # (MlflowClient, run id) -> None
_CLOSE = object()


class MlflowLog:
    """One MLflow run's log for this process: calls queue up and a background thread sends them in order."""

    def __init__(self, tracking_uri: str, run: str, *, run_id: str = ""):
        self.tracking_uri, self.run, self.run_id = tracking_uri, run, run_id
        self.failed = ""  # the first failure: nothing is sent after it
        self._calls: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._send, name="trainboard-mlflow", daemon=True)
        self._thread.start()

    @classmethod
    def from_environment(cls, run: str) -> MlflowLog | None:
        """The log of this trainboard run where MLFLOW_TRACKING_URI is set, else None (nothing logged)."""
        uri = os.environ.get(TRACKING_URI_ENV, "")
        return cls(uri, run, run_id=os.environ.get(RUN_ID_ENV, "")) if uri else None

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        values = {name: float(value) for name, value in metrics.items()}
        self._put(lambda client, run_id: client.log_batch(run_id, metrics=_metrics(values, step)))

    def set_tags(self, tags: Mapping[str, str]) -> None:
        values = {name: str(value) for name, value in tags.items()}
        self._put(lambda client, run_id: client.log_batch(run_id, tags=_tags(values)))

    def log_image(self, image: Any, artifact_file: str) -> None:
        """A picture (a height x width x 3 uint8 array) as the run's artifact ``artifact_file`` (.png)."""
        self._put(lambda client, run_id: client.log_image(run_id, image, artifact_file=artifact_file))

    def finish(self) -> None:
        """The run ends (FINISHED) when trainboard made it; a run KFP made is KFP's to end."""
        if not self.run_id:
            self._put(lambda client, run_id: client.set_terminated(run_id))

    def close(self, seconds: float = CLOSE_SECONDS) -> None:
        """Send what is queued, waiting at most ``seconds``; what is left then is dropped with a warning."""
        self._calls.put(_CLOSE)
        self._thread.join(seconds)
        if self._thread.is_alive() and not self.failed:
            self._fail(f"still sending after {seconds:g} s")

    def _put(self, call: _Call) -> None:
        if not self.failed:
            self._calls.put(call)

    def _send(self) -> None:
        try:  # at once, while the step works: importing mlflow alone takes seconds
            client = _client(self.tracking_uri)
            run_id = self.run_id or _trainboard_run_id(client, self.run)
            while (call := self._calls.get()) is not _CLOSE and not self.failed:
                call(client, run_id)
        except Exception as e:  # whatever the server or the network did: training goes on without it
            self._fail(f"{type(e).__name__}: {str(e)[:300]}")

    def _fail(self, reason: str) -> None:
        if self.failed:  # one warning
            return
        self.failed = reason
        log.warning("MLflow at %s: %s; the run goes on without MLflow logging", self.tracking_uri, reason)


def _client(tracking_uri: str) -> Any:
    """An MlflowClient whose requests wait at most REQUEST_SECONDS and are never retried: mlflow 3.17
    reads both settings from the environment at each request (mlflow/utils/rest_utils.py http_request,
    mlflow/environment_variables.py), and its defaults (120 s, 7 retries) would hold a step for minutes."""
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(REQUEST_SECONDS)
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def _trainboard_run_id(client: Any, run: str) -> str:
    """The MLflow run of trainboard run ``run`` in the EXPERIMENT experiment, made by the first step that
    asks (one step at a time asks: the pipeline's steps run one after another)."""
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(EXPERIMENT)
    found = client.search_runs([experiment_id], filter_string=f"tags.`{RUN_TAG}` = '{run}'", max_results=1)
    if found:
        return found[0].info.run_id
    return client.create_run(experiment_id, run_name=run, tags={RUN_TAG: run}).info.run_id


def _metrics(values: Mapping[str, float], step: int) -> list:
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(name, value, now, step) for name, value in values.items()]


def _tags(values: Mapping[str, str]) -> list:
    from mlflow.entities import RunTag

    return [RunTag(name, value) for name, value in values.items()]


def tag_run(mlflow: MlflowLog | None, tags: Mapping[str, str], *, finish: bool = False) -> None:
    """Set ``tags`` on the MLflow run (and end it with ``finish``), then close the log; None: nothing."""
    if mlflow:
        mlflow.set_tags(tags)
        if finish:
            mlflow.finish()
        mlflow.close()
