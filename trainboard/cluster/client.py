"""`trainboard submit` and `trainboard schedule`: the compiled pipeline sent to Kubeflow Pipelines through
kfp.Client, with what the raw `kfp` CLI lacks.

Everything is checked before the first request: parameters against the pipeline's own (names and
types), the cron expression, the root (a cluster run needs gs://), then the server itself (reachable,
token accepted) with one health check, and only then is anything created. TensorFlow-free.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainboard import layout
from trainboard.cluster.cron import check_cron
from trainboard.cluster.params import check_cluster_arguments, parse_params
from trainboard.cluster.pipeline_spec import compiled_pipeline, pipeline_parameters
from trainboard.cluster.settings import ENVIRONMENT, ClusterSettings
from trainboard.config import check_run_name
from trainboard.errors import UsageError
from trainboard.links import kfp_recurring_run_url, kfp_run_url, tensorboard_run_url

HEALTHZ = "/apis/v2beta1/healthz"
# KFP v2 run states after which a run does not change any more.
FINAL_STATES = ("SUCCEEDED", "FAILED", "SKIPPED", "CANCELED")
WAIT_POLL_SECONDS = 10


class ServerError(RuntimeError):
    """The server refused or failed a request after the input was checked; the CLI exits 1 on it."""


@dataclass(frozen=True)
class Submitted:
    run: str
    run_id: str
    run_url: str
    tensorboard_url: str


@dataclass(frozen=True)
class Scheduled:
    name: str
    recurring_run_id: str
    url: str


def _auth_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def check_server(settings: ClusterSettings) -> None:
    """One health check before anything is sent: the endpoint answers as the KFP API and takes the token.

    kfp.Client retries a failing health check for 25 s and then says little; this says which setting is
    wrong at once."""
    url = settings.endpoint + HEALTHZ
    request = urllib.request.Request(url, headers=_auth_headers(settings.token))
    token_hint = f'pass --token, set {ENVIRONMENT["token"]}, or put token = "..." in the config file'
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            body = response.read()
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            given = "refused the token" if settings.token else "needs a token"
            raise UsageError(
                "token", f"{settings.endpoint} answered {e.code} {e.reason}: it {given}; {token_hint}"
            ) from None
        raise UsageError(
            "endpoint", f"{url} answered {e.code} {e.reason}; is it the Kubeflow Pipelines API endpoint?"
        ) from None
    except OSError as e:
        reason = getattr(e, "reason", e)
        raise UsageError("endpoint", f"cannot reach {settings.endpoint}: {reason}") from None
    try:
        json.loads(body)
    except ValueError:
        # A login page (Dex, oauth2-proxy, IAP) answers 200 with HTML when the request carries no valid token.
        raise UsageError(
            "endpoint", f"{url} did not answer with JSON (a login page?); check the endpoint, or {token_hint}"
        ) from None


@contextlib.contextmanager
def _client(settings: ClusterSettings) -> Iterator[Any]:
    """kfp.Client on the checked endpoint; request failures become ServerError."""
    import kfp
    import kfp_server_api

    check_server(settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "only works with KFP v2.0.0-beta.2 and later"
        client = kfp.Client(host=settings.endpoint, existing_token=settings.token or None)
    try:
        # kfp prints "Run details: <link>" itself; the CLI prints its own summary.
        with contextlib.redirect_stdout(io.StringIO()):
            yield client
    except kfp_server_api.ApiException as e:
        raise ServerError(
            f"{settings.endpoint} answered {e.status} {e.reason}: {(e.body or '').strip()}"
        ) from None


@contextlib.contextmanager
def _pipeline_package() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "pipeline.yaml")
        path.write_text(compiled_pipeline())
        yield str(path)


def _checked_arguments(pairs: list[str], settings: ClusterSettings) -> dict[str, Any]:
    parameters = pipeline_parameters(compiled_pipeline())
    arguments = parse_params(pairs, parameters)
    if settings.tensorboard_url and "tensorboard_url" in parameters:
        arguments.setdefault("tensorboard_url", settings.tensorboard_url)
    check_cluster_arguments(arguments, parameters)
    return arguments


def submit(settings: ClusterSettings, pairs: list[str], run_name: str = "") -> Submitted:
    """One run of the pipeline; its KFP name is its run name under the root, unique unless given."""
    arguments = _checked_arguments(pairs, settings)
    if "run_name" in arguments:
        raise UsageError("param", "run_name is set with --run-name (the KFP run carries the same name)")
    run = run_name or layout.new_run_name()
    check_run_name(run)
    arguments["run_name"] = run
    with _client(settings) as client, _pipeline_package() as package:
        experiment = client.create_experiment(settings.experiment)  # gets it when it exists
        created = client.run_pipeline(
            experiment_id=experiment.experiment_id,
            job_name=run,
            pipeline_package_path=package,
            params=arguments,
            service_account=settings.service_account or None,
        )
    tensorboard_url = arguments.get("tensorboard_url", "")
    return Submitted(
        run=run,
        run_id=created.run_id,
        run_url=kfp_run_url(settings.endpoint, created.run_id),
        tensorboard_url=tensorboard_url and tensorboard_run_url(tensorboard_url, run),
    )


def wait(settings: ClusterSettings, run_id: str) -> str:
    """Poll the run until it reaches a final state; return that state."""
    with _client(settings) as client:
        while (state := str(client.get_run(run_id).state)) not in FINAL_STATES:
            time.sleep(WAIT_POLL_SECONDS)
    return state


def schedule(
    settings: ClusterSettings,
    pairs: list[str],
    name: str,
    cron: str,
    max_concurrency: int = 1,
    catchup: bool = False,
) -> Scheduled:
    """An enabled recurring run; each execution names its own run (start_run, from the KFP job id)."""
    cron = check_cron(cron)
    if max_concurrency < 1:
        raise UsageError("max_concurrency", f"must be at least 1, got {max_concurrency}")
    arguments = _checked_arguments(pairs, settings)
    if arguments.get("run_name"):
        raise UsageError(
            "param", "run_name cannot be fixed for a schedule: every execution gets its own unique run name"
        )
    with _client(settings) as client, _pipeline_package() as package:
        experiment = client.create_experiment(settings.experiment)
        created = client.create_recurring_run(
            experiment_id=experiment.experiment_id,
            job_name=name,
            cron_expression=cron,
            max_concurrency=max_concurrency,
            no_catchup=not catchup,
            params=arguments,
            pipeline_package_path=package,
            enabled=True,
            service_account=settings.service_account or None,
        )
    return Scheduled(
        name=name,
        recurring_run_id=created.recurring_run_id,
        url=kfp_recurring_run_url(settings.endpoint, created.recurring_run_id),
    )
