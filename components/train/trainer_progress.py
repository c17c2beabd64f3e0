"""Kubeflow Trainer's progress: inside a TrainJob whose controller runs its status server (Trainer v2.2+,
feature gate TrainJobStatus), the chief POSTs ``status.trainerStatus`` (progress, the time left, the last
epoch's metrics) to it after each epoch, at most once every MIN_INTERVAL seconds.

The documented HTTP (kubeflow/trainer docs/user-guides/trainjob-progress.md and
pkg/runtime/framework/plugins/trainjobstatus at v2.3.0): the controller sets KUBEFLOW_TRAINER_SERVER_URL
(the TrainJob's status URL), KUBEFLOW_TRAINER_SERVER_CA_CERT (a file: the CA that signed the server's
certificate) and KUBEFLOW_TRAINER_SERVER_TOKEN (a file: a projected service-account token that rotates,
read again for each request); the body is ``{"trainerStatus": {"progressPercentage", "estimatedRemaining
Seconds", "metrics": [{"name", "value"}]}}``, values as strings. Not the `kubeflow` SDK's
update_trainjob_status (kubeflow 0.5.0, kubeflow/trainer/backends/kubernetes/utils.py), though it
installs under our lock: it keeps a read token for 300 s (the token rotates), posts on the caller's
thread (5 s: it would be the training thread) and drops an update within 5 s of the last (the final 100%).

Never at the training's expense: the callback only records the latest update; one background thread sends
it, each request bounded by REQUEST_SECONDS; a failure is a warning (the first) and the next update is
tried again, as a token or a controller restart may fix it.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import threading
import time
import urllib.request

import keras

log = logging.getLogger(__name__)

URL_ENV = "KUBEFLOW_TRAINER_SERVER_URL"
CA_CERT_ENV = "KUBEFLOW_TRAINER_SERVER_CA_CERT"
TOKEN_ENV = "KUBEFLOW_TRAINER_SERVER_TOKEN"
MIN_INTERVAL = 5.0  # seconds between two updates: the status server's documented limit
REQUEST_SECONDS = 5.0
CLOSE_SECONDS = MIN_INTERVAL + REQUEST_SECONDS  # the last update (100%) waits out the interval once
MAX_METRICS, MAX_CHARS = 256, 64  # the API's limits (pkg/apis/trainer/v1alpha1/trainjob_types.go)


class TrainerProgress(keras.callbacks.Callback):
    """After each epoch, the TrainJob's progress (epochs done of ``epochs``), the time left at this
    attempt's pace, and the epoch's metrics (``names`` maps Keras's logs to the names shown)."""

    def __init__(self, url: str, epochs: int, *, names=None, min_interval: float = MIN_INTERVAL):
        super().__init__()
        self.epochs, self.names = epochs, names or (lambda logs: dict(logs))
        self.sender = _Sender(url, min_interval)
        self.first_epoch: int | None = None
        self.started = time.monotonic()

    @classmethod
    def from_environment(cls, epochs: int, names=None) -> TrainerProgress | None:
        url = os.environ.get(URL_ENV, "")
        return cls(url, epochs, names=names) if url else None

    def on_epoch_begin(self, epoch, logs=None):
        if self.first_epoch is None:  # this attempt's first: a resume starts past 0
            self.first_epoch, self.started = epoch, time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        per_epoch = (time.monotonic() - self.started) / max(1, done - (self.first_epoch or 0))
        metrics = [
            {"name": name[:MAX_CHARS], "value": f"{value:.6g}"}
            for name, value in self.names(logs or {}).items()
        ][:MAX_METRICS]
        status = {
            "progressPercentage": min(100, round(100 * done / self.epochs)),
            "estimatedRemainingSeconds": round(per_epoch * max(0, self.epochs - done)),
            "metrics": metrics,
        }
        self.sender.offer({"trainerStatus": status})

    def close(self) -> None:
        self.sender.close()


class _Sender:
    """The latest update, sent from one thread no sooner than ``min_interval`` after the one before."""

    def __init__(self, url: str, min_interval: float):
        self.url, self.min_interval = url, min_interval
        self.warned = False
        self._latest: dict | None = None
        self._closing = False
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="trainboard-trainer-progress", daemon=True)
        self._thread.start()

    def offer(self, body: dict) -> None:
        with self._wake:
            self._latest = body
            self._wake.notify()

    def close(self) -> None:
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join(CLOSE_SECONDS)

    def _run(self) -> None:
        last_sent = -self.min_interval
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._latest is not None or self._closing)
                if self._latest is None:
                    return
            wait = last_sent + self.min_interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            with self._wake:
                body, self._latest = self._latest, None
            last_sent = time.monotonic()
            self._post(body)

    def _post(self, body: dict | None) -> None:
        try:
            with open(os.environ[TOKEN_ENV]) as f:  # rotates: read for each request
                token = f.read().strip()
            context = ssl.create_default_context(cafile=os.environ.get(CA_CERT_ENV) or None)
            request = urllib.request.Request(
                self.url,
                data=json.dumps(body).encode(),
                method="POST",
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=REQUEST_SECONDS, context=context):
                pass
        except Exception as e:  # whatever the server, the network or the files did: training goes on
            if not self.warned:
                self.warned = True
                log.warning(
                    "Kubeflow Trainer progress to %s: %s: %s (training goes on)",
                    self.url,
                    type(e).__name__,
                    e,
                )
