"""`trainboard submit` and `trainboard schedule`: the compiled pipeline sent to Kubeflow Pipelines through
kfp.Client, with what the raw `kfp` CLI lacks.

Everything is checked before the first request: parameters against the pipeline's own (names and
types), the cron expression, the root (a cluster run needs gs://), then the server itself (reachable,
token accepted) with one health check, and only then is anything created. TensorFlow-free.
"""

from __future__ import annotations

import contextlib
import functools
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
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from trainboard import layout, storage
from trainboard.config import (
    PromotionRule,
    TrainingConfig,
    UsageError,
    check_config,
    check_non_negative,
    check_promotion_rule,
    check_root,
    check_run_name,
)
from trainboard.links import kfp_recurring_run_url, kfp_run_url, tensorboard_run_url
from trainboard.settings import ENVIRONMENT, ClusterSettings

HEALTHZ = "/apis/v2beta1/healthz"
# KFP v2 run states after which a run does not change any more.
FINAL_STATES = ("SUCCEEDED", "FAILED", "SKIPPED", "CANCELED")
WAIT_POLL_SECONDS = 10


class ServerError(RuntimeError):
    """The server refused or failed a request after the input was checked; the CLI exits 1 on it."""


@dataclass(frozen=True)
class PipelineParameter:
    name: str
    type: (
        str  # the pipeline spec's parameterType: STRING, NUMBER_INTEGER, NUMBER_DOUBLE, BOOLEAN, LIST, STRUCT
    )
    required: bool
    default: Any = None


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


@functools.cache
def compiled_pipeline() -> str:
    """The pipeline YAML exactly as `trainboard compile` writes it (compiled once per process)."""
    from kfp import compiler

    from trainboard.pipelines.training_pipeline import training_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "pipeline.yaml")
        compiler.Compiler().compile(training_pipeline, str(path))
        return path.read_text()


def pipeline_parameters(pipeline_yaml: str) -> dict[str, PipelineParameter]:
    import yaml

    pipeline_spec = next(yaml.safe_load_all(pipeline_yaml))
    return {
        name: PipelineParameter(name, p["parameterType"], not p.get("isOptional"), p.get("defaultValue"))
        for name, p in pipeline_spec["root"]["inputDefinitions"]["parameters"].items()
    }


_TYPE_WORDS = {
    "STRING": "a string",
    "NUMBER_INTEGER": "an integer",
    "NUMBER_DOUBLE": "a number",
    "BOOLEAN": "true or false",
    "LIST": "a JSON list",
    "STRUCT": "a JSON object",
}


def _typed_value(parameter: PipelineParameter, text: str) -> Any:
    """``text`` as the parameter's type, or UsageError naming the parameter, the value and the type."""
    kind = parameter.type
    value: Any = None
    if kind == "STRING":
        return text
    if kind == "NUMBER_INTEGER" and re.fullmatch(r"[+-]?\d+", text):
        value = int(text)
    elif kind == "NUMBER_DOUBLE":
        with contextlib.suppress(ValueError):
            value = float(text) if math.isfinite(float(text)) else None
    elif kind == "BOOLEAN" and text.lower() in ("true", "false"):
        value = text.lower() == "true"
    elif kind in ("LIST", "STRUCT"):
        with contextlib.suppress(ValueError):
            value = json.loads(text)
        value = value if isinstance(value, list if kind == "LIST" else dict) else None
    if value is None:
        default = "" if parameter.required else f" (default {json.dumps(parameter.default)})"
        expected = _TYPE_WORDS[kind]
        raise UsageError(
            "param",
            f"{parameter.name}={text!r} is not {expected}; {parameter.name} takes {expected}{default}",
        )
    return value


def parse_params(pairs: list[str], parameters: dict[str, PipelineParameter]) -> dict[str, Any]:
    """``["KEY=VALUE", ...]`` -> {KEY: value of the parameter's type}; UsageError on unknown names,
    repeated names and values of the wrong type."""
    arguments: dict[str, Any] = {}
    for pair in pairs:
        name, equals, text = pair.partition("=")
        if not equals or not name:
            raise UsageError("param", f"{pair!r} is not KEY=VALUE")
        if name not in parameters:
            raise UsageError(
                "param", f"unknown parameter {name!r}; the pipeline takes: {', '.join(sorted(parameters))}"
            )
        if name in arguments:
            raise UsageError("param", f"{name} is given twice")
        arguments[name] = _typed_value(parameters[name], text)
    return arguments


def check_cluster_arguments(arguments: dict[str, Any], parameters: dict[str, PipelineParameter]) -> None:
    """Every required parameter given; the root a gs:// URI (a local path exists only on this machine);
    promotion thresholds in [0, 1]."""
    missing = [name for name, p in parameters.items() if p.required and name not in arguments]
    if missing:
        raise UsageError("param", f"missing required {', '.join(missing)}; add --param NAME=VALUE for each")
    if "root" in arguments:
        try:
            root = check_root(arguments["root"])
        except UsageError as e:
            raise UsageError("param", f"root={arguments['root']!r}: {e.problem}") from None
        if not storage.is_gcs(root):
            raise UsageError(
                "param",
                f"root={arguments['root']!r} is a local path; a cluster run needs gs://BUCKET[/PREFIX], "
                "storage every task and the team TensorBoard can reach",
            )
        arguments["root"] = root
    for name in ("min_accuracy", "min_improvement"):
        if name in arguments:
            try:
                check_promotion_rule(PromotionRule(**{name: arguments[name]}))
            except UsageError as e:
                raise UsageError("param", f"{name}={arguments[name]!r}: {e.problem}") from None
    _check_training_values(arguments, parameters)


def _check_training_values(arguments: dict[str, Any], parameters: dict[str, PipelineParameter]) -> None:
    """The checks `trainboard local` makes, here before sending: a bad value would fail on the cluster."""
    from trainboard.components.prepare_data.sources import check_fraction, parse_source

    values = {name: arguments.get(name, p.default) for name, p in parameters.items()}
    config_values = {f.name: values[f.name] for f in fields(TrainingConfig) if f.name in values}
    try:
        check_config(TrainingConfig(**config_values))
        check_non_negative("accelerator_count", values.get("accelerator_count", 0))
        check_fraction("validation_fraction", values.get("validation_fraction", 0.1))
        check_fraction("test_fraction", values.get("test_fraction", 0.1))
        if "dataset" in values:
            parse_source(values["dataset"])
    except UsageError as e:
        raise UsageError("param", f"{e.field}={values[e.field]!r}: {e.problem}") from None


# robfig/cron (what the KFP scheduler uses) with seconds: six fields, seconds first.
CRON_FORMAT = (
    "KFP cron has 6 fields: second minute hour day-of-month month day-of-week, "
    "e.g. '0 0 3 * * *' for 03:00 UTC every day"
)
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
_CRON_FIELDS = (  # name, lowest, highest, names of the values from lowest on
    ("second", 0, 59, []),
    ("minute", 0, 59, []),
    ("hour", 0, 23, []),
    ("day-of-month", 1, 31, []),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 6, _DAYS),
)
_CRON_ITEM_RE = re.compile(r"^(?:(\*|\?)|(\w+)(?:-(\w+))?)(?:/(\d+))?$")


def _cron_item_ok(item: str, low: int, high: int, names: list[str]) -> bool:
    match = _CRON_ITEM_RE.match(item)
    if not match:
        return False
    wildcard, first, last, step = match.groups()
    if step is not None and int(step) == 0:
        return False
    if wildcard:
        return True
    values = []
    for token in (first, last):
        if token is None:
            continue
        if token.isdigit():
            values.append(int(token))
        elif token.upper() in names:
            values.append(low + names.index(token.upper()))
        else:
            return False
    return all(low <= v <= high for v in values) and values == sorted(values)


def check_cron(expression: str) -> str:
    fields = expression.split()
    if len(fields) != len(_CRON_FIELDS):
        raise UsageError("cron", f"{expression!r} has {len(fields)} fields; {CRON_FORMAT}")
    for text, (name, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        if not all(_cron_item_ok(item, low, high, names) for item in text.split(",")):
            raise UsageError(
                "cron",
                f"{name} {text!r} in {expression!r} is not valid: use *, ?, N, N-M, */S or lists of them "
                f"with N in {low}-{high}; {CRON_FORMAT}",
            )
    return " ".join(fields)


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
