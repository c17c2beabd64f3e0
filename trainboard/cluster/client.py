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
import math
import re
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
from trainboard.cluster.auth import Credentials, credentials, without_userinfo
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


class Unreachable(ServerError):
    """The API stopped answering after the checks (the network, a restart); the CLI exits 3 on it."""


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


# The first Kubeflow Pipelines backend release that runs the compiled pipeline as written, and why (each
# checked against kubeflow/pipelines' CHANGELOG.md and code; docs/cluster.md "Supported backends").
MIN_RELEASE = (2, 5, 0)
NEEDS = (
    "2.4.0: the GPU type and count from pipeline parameters (#11501)",
    "2.5.0: nodeSelectorJson / tolerationJson (#11770; an older driver fails the train task on the "
    "unknown field), the task retry policy (#11673; older: no retries, silently) and "
    "{{$.pipeline_job_uuid}} (#11599; older: the literal reaches start_run, which refuses it)",
)


@dataclass(frozen=True)
class Health:
    release: str  # healthz tag_name, as the server reports it
    multi_user: bool


def _release(tag: str) -> tuple[int, int, int] | None:
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)(?:[-+.].*)?", tag.strip())
    return tuple(int(n) for n in match.groups()) if match else None  # type: ignore[return-value]


def check_server(settings: ClusterSettings, creds: Credentials) -> Health:
    """One health check before anything is sent, with the client's own credentials: the endpoint answers
    as the KFP API, takes the credentials, runs a supported release, and gets a namespace if it is
    multi-user.

    kfp.Client retries a failing health check for 25 s and then says little; this says which setting is
    wrong at once."""
    endpoint = without_userinfo(settings.endpoint)
    url = settings.endpoint + HEALTHZ
    request = urllib.request.Request(url, headers=creds.headers())
    token_hint = f'set {ENVIRONMENT["token"]}, put token = "..." in the config file, or pass --token'
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            body = response.read()
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            given = (
                f"refused the credentials ({creds.source})"
                if creds.token or creds.cookies
                else "needs a token"
            )
            raise UsageError(
                "token", f"{endpoint} answered {e.code} {e.reason}: it {given}; {token_hint}"
            ) from None
        raise UsageError(
            "endpoint",
            f"{endpoint}{HEALTHZ} answered {e.code} {e.reason}; is it the Kubeflow Pipelines API endpoint?",
        ) from None
    except OSError as e:
        reason = getattr(e, "reason", e)
        raise UsageError("endpoint", f"cannot reach {endpoint}: {reason}") from None
    try:
        answer = json.loads(body)
    except ValueError:
        # A login page (Dex, oauth2-proxy, IAP) answers 200 with HTML when the request carries no valid token.
        raise UsageError(
            "endpoint",
            f"{endpoint}{HEALTHZ} did not answer with JSON (a login page?); check the endpoint, or "
            f"{token_hint}",
        ) from None
    health = Health(str(answer.get("tag_name") or "unknown"), bool(answer.get("multi_user")))
    _check_release(health, settings.skip_version_check)
    if health.multi_user and not settings.namespace:
        raise UsageError(
            "namespace",
            f"{endpoint} is multi-user Kubeflow: say which profile namespace the runs go to, with "
            f'--namespace NS, {ENVIRONMENT["namespace"]} or namespace = "NS" in the config file',
        )
    return health


def _check_release(health: Health, skip: bool) -> None:
    minimum = ".".join(map(str, MIN_RELEASE))
    release = _release(health.release)
    if release is None and not skip:
        raise UsageError(
            "endpoint",
            f"the server reports release {health.release!r}, not a version; trainboard needs Kubeflow "
            f"Pipelines {minimum} or later: if it is, pass --skip-version-check",
        )
    if release is not None and release < MIN_RELEASE:
        raise UsageError(
            "endpoint",
            f"the server runs Kubeflow Pipelines {health.release}; trainboard needs {minimum} or later "
            f"({'; '.join(NEEDS)}). Upgrade the backend",
        )


@contextlib.contextmanager
def _client(settings: ClusterSettings) -> Iterator[Any]:
    """kfp.Client on the checked endpoint with the checked credentials; request failures become
    ServerError."""
    import kfp
    import kfp_server_api
    import urllib3

    creds = credentials(settings.token)
    check_server(settings, creds)  # with the very credentials the client sends
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "only works with KFP v2.0.0-beta.2 and later"
        client = kfp.Client(
            host=settings.endpoint, namespace=settings.namespace or "kubeflow", **creds.client_arguments()
        )
    try:
        # kfp prints "Run details: <link>" itself; the CLI prints its own summary.
        with contextlib.redirect_stdout(io.StringIO()):
            yield client
    except kfp_server_api.ApiException as e:
        raise ServerError(
            f"{without_userinfo(settings.endpoint)} answered {e.status} {e.reason}: {(e.body or '').strip()}"
        ) from None
    except (OSError, urllib3.exceptions.HTTPError) as e:
        raise Unreachable(f"lost {without_userinfo(settings.endpoint)}: {e}") from None


def _experiment(client: Any, settings: ClusterSettings) -> Any:
    """The settings' experiment in its namespace, created when missing (create_experiment gets an existing
    one)."""
    return client.create_experiment(settings.experiment, namespace=settings.namespace or None)


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
        experiment = _experiment(client, settings)
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
        run_url=kfp_run_url(without_userinfo(settings.endpoint), created.run_id),
        tensorboard_url=tensorboard_url and tensorboard_run_url(tensorboard_url, run),
    )


class WaitTimeout(RuntimeError):
    """The run had not finished when --timeout ran out (it goes on); the CLI exits 4."""


def wait(settings: ClusterSettings, run_id: str, timeout: float = 0) -> str:
    """Poll the run until it reaches a final state; return that state. WaitTimeout after ``timeout``
    seconds (0: no limit); Unreachable when the API stops answering."""
    deadline = time.monotonic() + timeout if timeout else math.inf
    with _client(settings) as client:
        while (state := str(client.get_run(run_id).state)) not in FINAL_STATES:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(f"the run is still {state} after {timeout:g} s; it goes on")
            time.sleep(min(WAIT_POLL_SECONDS, left))
    return state


@dataclass(frozen=True)
class Schedule:
    name: str
    recurring_run_id: str
    status: str
    cron: str
    parameters: dict[str, Any]
    created_at: str

    def describe(self) -> str:
        parameters = json.dumps(self.parameters, sort_keys=True)
        return f"cron '{self.cron}', {self.status.lower()}, parameters {parameters}"


def _schedules(client: Any, experiment_id: str) -> list[Schedule]:
    """Every recurring run of the experiment, oldest first."""
    found, token = [], ""
    while True:
        page = client.list_recurring_runs(page_token=token, page_size=100, experiment_id=experiment_id)
        for r in page.recurring_runs or []:
            cron = r.trigger.cron_schedule.cron if r.trigger and r.trigger.cron_schedule else ""
            parameters = (r.runtime_config.parameters if r.runtime_config else None) or {}
            found.append(
                Schedule(
                    r.display_name, r.recurring_run_id, str(r.status), cron, parameters, str(r.created_at)
                )
            )
        token = page.next_page_token
        if not token:
            return found


def schedule(
    settings: ClusterSettings,
    pairs: list[str],
    name: str,
    cron: str,
    max_concurrency: int = 1,
    catchup: bool = False,
    replace: bool = False,
) -> Scheduled:
    """An enabled recurring run; each execution names its own run (start_run, from the KFP job id). A
    schedule of the same name in the experiment is refused, or with ``replace`` deleted once the new one
    exists (never a moment with no nightly run)."""
    cron = check_cron(cron)
    if max_concurrency < 1:
        raise UsageError("max_concurrency", f"must be at least 1, got {max_concurrency}")
    arguments = _checked_arguments(pairs, settings)
    if arguments.get("run_name"):
        raise UsageError(
            "param", "run_name cannot be fixed for a schedule: every execution gets its own unique run name"
        )
    with _client(settings) as client, _pipeline_package() as package:
        experiment = _experiment(client, settings)
        existing = [s for s in _schedules(client, experiment.experiment_id) if s.name == name]
        if existing and not replace:
            mine = Schedule(name, "", "ENABLED", cron, arguments, "").describe()
            raise UsageError(
                "name",
                f"schedule {name} exists in experiment {settings.experiment}: {existing[0].describe()}; "
                f"yours: {mine}. Replace it with --replace, or choose another --name",
            )
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
        for old in existing:  # only now that the new one exists
            client.delete_recurring_run(old.recurring_run_id)
    return Scheduled(
        name=name,
        recurring_run_id=created.recurring_run_id,
        url=kfp_recurring_run_url(without_userinfo(settings.endpoint), created.recurring_run_id),
    )


def list_schedules(settings: ClusterSettings) -> list[Schedule]:
    with _client(settings) as client:
        return _schedules(client, _experiment(client, settings).experiment_id)


SCHEDULE_ACTIONS = ("pause", "resume", "delete")


def change_schedule(settings: ClusterSettings, name: str, action: str) -> list[Schedule]:
    """Pause (disable), resume (enable) or delete every schedule called ``name`` in the experiment;
    returns them. UsageError when there is none."""
    with _client(settings) as client:
        schedules = _schedules(client, _experiment(client, settings).experiment_id)
        targets = [s for s in schedules if s.name == name]
        if not targets:
            names = ", ".join(sorted({s.name for s in schedules})) or "none"
            raise UsageError(
                "name", f"no schedule {name!r} in experiment {settings.experiment}; it has: {names}"
            )
        change = {
            "pause": client.disable_recurring_run,
            "resume": client.enable_recurring_run,
            "delete": client.delete_recurring_run,
        }[action]
        for target in targets:
            change(target.recurring_run_id)
    return targets
