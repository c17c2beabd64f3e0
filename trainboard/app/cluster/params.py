"""`--param KEY=VALUE`: parsed by the pipeline's own parameter types, and checked as `trainboard local` and
the tasks would check them, before anything is sent: a bad value would otherwise fail on the cluster,
after the image pull and the retries."""

from __future__ import annotations

import contextlib
import json
import math
import re
from typing import Any

from trainboard import storage
from trainboard.app.cluster.pipeline_spec import PipelineParameter, compiled_pipeline, pipeline_parameters
from trainboard.app.cluster.settings import ClusterSettings
from trainboard.artifacts.champion import check_records
from trainboard.checks import check_accelerator_type
from trainboard.config_checks import check_pipeline_parameters
from trainboard.errors import UsageError
from trainboard.roots import check_root
from trainboard.sources import check_source
from trainboard.weights import IMAGENET, NONE

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


def check_cluster_arguments(arguments: dict[str, Any], parameters: dict[str, PipelineParameter]) -> list[str]:
    """Every required parameter given; the root a gs:// URI (a local path exists only on this machine);
    every value as the tasks check it; a given dataset as `trainboard local` checks it (check_source), for
    the cluster. Returns check_source's notes, for the console."""
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
    data_dir = arguments.get("tfds_data_dir", "")
    if data_dir and not storage.is_gcs(data_dir) and "://" not in data_dir:  # a scheme: check_data_config
        raise UsageError(
            "param",
            f"tfds_data_dir={data_dir!r} is a local path; the cluster's tasks read gs://BUCKET[/PREFIX] "
            "(a local folder exists only on this machine)",
        )
    weights = arguments.get("weights", "")
    if weights not in ("", NONE, IMAGENET) and not storage.is_gcs(weights):
        raise UsageError(
            "param",
            f"weights={weights!r} is a local path; the train task reads gs:// URIs (upload the file to the "
            "bucket)",
        )
    _check_config_values(arguments, parameters)
    _check_accelerator(arguments, parameters)
    if "dataset" not in arguments:  # the default, tfds:caltech101: tests/test_prepare_data.py prepares it
        return []
    try:  # last: a tfds: source loads TensorFlow Datasets, seconds
        return check_source(arguments["dataset"], cluster=True)
    except UsageError as e:
        raise UsageError("param", f"dataset={arguments['dataset']!r}: {e.problem}") from None


def _check_config_values(arguments: dict[str, Any], parameters: dict[str, PipelineParameter]) -> None:
    """The checks the first task makes (check_pipeline_parameters), here before sending: a bad value would
    fail on the cluster. Every config field is a pipeline parameter (tests/test_parameters.py)."""
    values = {name: arguments.get(name, p.default) for name, p in parameters.items()}
    try:
        check_pipeline_parameters(values)
    except UsageError as e:
        raise UsageError("param", f"{e.field}={values[e.field]!r}: {e.problem}") from None


def _check_accelerator(arguments: dict[str, Any], parameters: dict[str, PipelineParameter]) -> None:
    """The accelerator the train task requests: only the pipeline's resources carry it (no task takes it
    as an input), so only here can it be checked before a pod asks for a resource no node has."""
    values = {
        name: arguments.get(name, parameters[name].default)
        for name in ("accelerator_type", "accelerator_count")
    }
    try:
        check_accelerator_type(values["accelerator_type"], values["accelerator_count"])
    except UsageError as e:
        raise UsageError("param", f"accelerator_type={values['accelerator_type']!r}: {e.problem}") from None


def checked_arguments(pairs: list[str], settings: ClusterSettings) -> tuple[dict[str, Any], list[str]]:
    """``--param`` pairs parsed by the compiled pipeline's own types, the team TensorBoard URL from the
    settings added, and every value checked as the tasks would; with the notes of the checks."""
    parameters = pipeline_parameters(compiled_pipeline())
    arguments = parse_params(pairs, parameters)
    if settings.tensorboard_url and "tensorboard_url" in parameters:
        arguments.setdefault("tensorboard_url", settings.tensorboard_url)
    return arguments, check_cluster_arguments(arguments, parameters)


def check_root_records(root: str, run: str = "") -> None:
    """What start_run would refuse from the root's records (a damaged champion.json or history entry, a
    run name already promoted), checked before sending where this machine can read the root; without
    credentials or rights to read it, start_run checks on the cluster."""
    try:
        check_records(root, run)
    except (storage.NoCredentials, PermissionError):
        return
    except UsageError as e:
        raise UsageError("param", f"root={root!r}: {e.field}: {e.problem}") from None
