"""The connection to the Kubeflow Pipelines API: one health check before anything is sent (reachable, the
credentials taken, a supported release, a namespace where multi-user), then kfp.Client with the same
credentials, its failures turned into ServerError / Unreachable, every request with a deadline.
TensorFlow-free."""

from __future__ import annotations

import contextlib
import io
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from trainboard.app.cluster.answers import not_a_json_object, shape_problem
from trainboard.app.cluster.auth import Credentials, credentials, without_userinfo
from trainboard.app.cluster.settings import ENVIRONMENT, ClusterSettings
from trainboard.errors import UsageError

API = "/apis/v2beta1"
HEALTHZ = API + "/healthz"
# A server can answer its health check and stall on every other route (a wedged database behind it):
# each request gets REQUEST_SECONDS to connect and as long again for each read, and the requests that
# send one run or schedule get SEND_SECONDS in all.
REQUEST_SECONDS = 30.0
SEND_SECONDS = 120.0


class ServerError(RuntimeError):
    """The server refused or failed a request after the input was checked; the CLI exits 1 on it."""

    exit_code = 1


class Unreachable(ServerError):
    """The API stopped answering after the checks (the network, a restart); the CLI exits 3 on it."""

    exit_code = 3


class WrongAnswer(Unreachable):
    """The API answered, but not as the KFP API does (bytes that are not UTF-8 JSON, JSON of another shape,
    a run without its id): nothing it said can be trusted, as if it had not answered; the CLI exits 3."""


# The first Kubeflow Pipelines backend release that runs the compiled pipeline as written, and why (each
# checked against kubeflow/pipelines' CHANGELOG.md and code; docs/cluster.md "Supported backends").
MIN_RELEASE = (2, 14, 0)
NEEDS = (
    "2.4.0: the GPU type and count from pipeline parameters (#11501)",
    "2.5.0: nodeSelectorJson / tolerationJson (#11770; an older driver fails the train task on the "
    "unknown field), the task retry policy (#11673; older: no retries, silently) and "
    "{{$.pipeline_job_uuid}} (#11599; older: the literal reaches start_run, which refuses it)",
    "2.14.0: dsl.Collected of the trials' models after their ParallelFor (#11725; older backends cannot "
    "collect a loop's outputs, and every run, with a sweep or not, collects its trials)",
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
    url = endpoint + HEALTHZ  # a user:password@ in the URL is in creds (basic auth): urllib takes no userinfo
    request = urllib.request.Request(url, headers=creds.headers())
    token_hint = (
        "check the user and password in the endpoint URL (percent-encode @ : / in them)"
        if creds.basic
        else f'set {ENVIRONMENT["token"]}, put token = "..." in the config file, or pass --token'
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            body = response.read()
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            given = (
                f"refused the credentials ({creds.source})"
                if creds.token or creds.cookies or creds.basic
                else "needs a token"
            )
            raise UsageError(
                "endpoint" if creds.basic else "token",
                f"{endpoint} answered {e.code} {e.reason}: it {given}; {token_hint}",
            ) from None
        raise UsageError(
            "endpoint",
            f"{endpoint}{HEALTHZ} answered {e.code} {e.reason}; is it the Kubeflow Pipelines API endpoint?",
        ) from None
    except OSError as e:
        reason = getattr(e, "reason", e)
        raise UsageError("endpoint", f"cannot reach {endpoint}: {reason}") from None
    if problem := not_a_json_object(body):
        # A login page (Dex, oauth2-proxy, IAP) answers 200 with HTML when the request carries no valid token.
        raise UsageError(
            "endpoint",
            f"{endpoint}{HEALTHZ} answered {problem}, not the KFP API's health; check the endpoint, or "
            f"{token_hint}",
        )
    health = _health(json.loads(body))
    if health is None:
        raise UsageError(
            "endpoint",
            f"{endpoint}{HEALTHZ} answered JSON whose tag_name is not a string or multi_user not true or "
            "false: not the KFP API's health; check the endpoint",
        )
    _check_release(health, settings.skip_version_check)
    if health.multi_user and not settings.namespace:
        raise UsageError(
            "namespace",
            f"{endpoint} is multi-user Kubeflow: say which profile namespace the runs go to, with "
            f'--namespace NS, {ENVIRONMENT["namespace"]} or namespace = "NS" in the config file',
        )
    return health


def _health(answer: dict[str, Any]) -> Health | None:
    """healthz's fields (backend/src/apiserver/main.go, 2.17.0): a missing field is the API's default
    (an old release reports no tag_name); a field of another type is not the API (a string "false"
    would read as multi-user)."""
    tag, multi_user = answer.get("tag_name") or "unknown", answer.get("multi_user", False)
    if not isinstance(tag, str) or not isinstance(multi_user, bool):
        return None
    return Health(tag, multi_user)


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
def connect(settings: ClusterSettings, total: float | None = None) -> Iterator[Any]:
    """kfp.Client on the checked endpoint with the checked credentials; request failures become
    ServerError, a request with no answer within REQUEST_SECONDS, or past ``total`` seconds of requests
    (default SEND_SECONDS), Unreachable naming it."""
    import kfp
    import kfp_server_api
    import urllib3

    creds = credentials(settings.token, settings.endpoint)
    check_server(settings, creds)  # with the very credentials the client sends
    endpoint = without_userinfo(settings.endpoint)
    try:
        with _deadlines(kfp_server_api.ApiClient, endpoint, SEND_SECONDS if total is None else total):
            with warnings.catch_warnings():
                # "This client only works with KFP v2.0.0-beta.2 and later": check_server checked more.
                warnings.simplefilter("ignore", FutureWarning)
                client = kfp.Client(
                    host=endpoint, namespace=settings.namespace or "kubeflow", **creds.client_arguments()
                )
            # kfp prints "Run details: <link>" itself; the CLI prints its own summary.
            with contextlib.redirect_stdout(io.StringIO()):
                yield client
    except kfp_server_api.ApiException as e:
        raise ServerError(f"{endpoint} answered {e.status} {e.reason}: {(e.body or '').strip()}") from None
    except (OSError, urllib3.exceptions.HTTPError) as e:
        raise Unreachable(f"lost {endpoint}: {e}") from None


@contextlib.contextmanager
def _deadlines(api_client: type[Any], endpoint: str, total: float) -> Iterator[None]:
    """Every request of ``api_client`` (kfp_server_api.ApiClient) with a deadline while inside.

    kfp.Client never passes the generated client's ``_request_timeout`` (kfp/client/client.py; its
    constructor may itself call healthz, hence the class, not an instance), and without it
    RESTClientObject.request hands urllib3 ``timeout=None``, which overrides any pool default and waits
    forever (kfp_server_api/rest.py). So ApiClient.request (kfp_server_api/api_client.py), which every
    call goes through, gets one here; urllib3 retries a GET whose read timed out, so read retries are
    turned off too, or one GET could take four deadlines."""
    import urllib3

    no_read_retries = urllib3.Retry(total=3, read=0)
    end = time.monotonic() + total
    request, deserialize = api_client.request, api_client.deserialize
    last = {"route": ""}  # the route of the answer being deserialized (one client, one thread)

    def with_deadline(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        route = last["route"] = f"{method} {urllib.parse.urlsplit(url).path}"
        left = end - time.monotonic()
        if left <= 0:
            raise Unreachable(f"{endpoint}: {route} not sent: the requests before it took {total:g} s in all")
        seconds = min(REQUEST_SECONDS, left)
        kwargs["_request_timeout"] = (seconds, seconds)  # connect, then each read
        self.rest_client.pool_manager.connection_pool_kw["retries"] = no_read_retries
        try:
            response = request(self, method, url, *args, **kwargs)
        except (urllib3.exceptions.MaxRetryError, urllib3.exceptions.TimeoutError) as e:
            error = e.reason if isinstance(e, urllib3.exceptions.MaxRetryError) else e
            # urllib3 2 makes a refused connection (NewConnectionError) a ConnectTimeoutError too.
            if not isinstance(error, urllib3.exceptions.TimeoutError) or isinstance(
                error, urllib3.exceptions.NewConnectionError
            ):
                raise
        else:
            if problem := not_a_json_object(response.data):
                raise WrongAnswer(f"{endpoint}: {route} answered {problem}{_NOT_KFP}{_maybe_done(method)}")
            return response
        limit = (
            f"within {seconds:g} s" if seconds == REQUEST_SECONDS else f"before {total:g} s in all ran out"
        )
        raise Unreachable(
            f"{endpoint}: {route} did not answer {limit}, though the health check did{_maybe_done(method)}"
        )

    def checked_deserialize(self: Any, response: Any, response_type: Any) -> Any:
        """The generated client's model of the answer, once the JSON has that model's shape (the client
        itself would make a string where a list of experiments belongs into one experiment a letter)."""
        answer = json.loads(response.data)  # with_deadline checked it
        if isinstance(response_type, str) and (problem := shape_problem(answer, response_type)):
            route = last["route"]
            raise WrongAnswer(
                f"{endpoint}: {route} answered JSON where {problem}{_NOT_KFP}{_maybe_done(route)}"
            )
        return deserialize(self, response, response_type)

    api_client.request, api_client.deserialize = with_deadline, checked_deserialize
    try:
        yield
    finally:
        api_client.request, api_client.deserialize = request, deserialize


_NOT_KFP = ": not an answer of the Kubeflow Pipelines API (a proxy or another service at the endpoint?)"


def _maybe_done(route: str) -> str:
    """A request that changes something may have done so before its answer was lost or garbled."""
    return "" if route.startswith("GET") else "; it may have taken effect: look in the KFP UI first"


def identified(model: Any, field: str, route: str, endpoint: str) -> str:
    """``model``'s id ``field`` (run_id, recurring_run_id, experiment_id) as the server gave it; a model
    without one is a server that did not do what it said (a link to .../details/None): WrongAnswer."""
    value = getattr(model, field, None)
    if not isinstance(value, str) or not value.strip():
        raise WrongAnswer(
            f"{endpoint}: {route} answered with no {field} (it has {value!r}){_NOT_KFP}{_maybe_done(route)}"
        )
    return value


def ensure_experiment(client: Any, settings: ClusterSettings) -> str:
    """The id of the settings' experiment in its namespace, created when missing (create_experiment gets
    an existing one)."""
    experiment = client.create_experiment(settings.experiment, namespace=settings.namespace or None)
    return identified(
        experiment, "experiment_id", f"POST {API}/experiments", without_userinfo(settings.endpoint)
    )
