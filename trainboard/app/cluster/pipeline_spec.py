"""The compiled pipeline, as `trainboard compile` writes it, and its parameters as the YAML declares them
(what the KFP API server will check a run's arguments against)."""

from __future__ import annotations

import contextlib
import functools
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PipelineParameter:
    name: str
    type: (
        str  # the pipeline spec's parameterType: STRING, NUMBER_INTEGER, NUMBER_DOUBLE, BOOLEAN, LIST, STRUCT
    )
    required: bool
    default: Any = None


@functools.cache
def compiled_pipeline() -> str:
    """The pipeline YAML exactly as `trainboard compile` writes it (compiled once per process): the same
    code gives the same bytes.

    KFP's, with its header comment written again from the spec below it. KFP writes a list-of-dicts
    default there (gpu_tolerations) in the order of protobuf's map, which changes from one process to the
    next; the spec itself is written with sorted keys. Integer defaults read 10 there, not KFP's 10.0."""
    import yaml
    from kfp import compiler
    from kfp.compiler.pipeline_spec_builder import extract_comments_from_pipeline_spec

    from trainboard.pipelines.training_pipeline import (
        cluster_pipeline,  # training_pipeline + the notification
    )

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "pipeline.yaml")
        compiler.Compiler().compile(cluster_pipeline, str(path))
        text = path.read_text()
    lines = text.splitlines(keepends=True)
    header = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    spec = next(yaml.safe_load_all("".join(lines[header:])))  # dicts in the file's (sorted) order
    for parameter in spec["root"]["inputDefinitions"]["parameters"].values():
        if parameter["parameterType"] == "NUMBER_INTEGER" and "defaultValue" in parameter:
            parameter["defaultValue"] = int(parameter["defaultValue"])
    comment = extract_comments_from_pipeline_spec(spec, spec["pipelineInfo"].get("description", ""))
    return comment + "".join(lines[header:])


def pipeline_parameters(pipeline_yaml: str) -> dict[str, PipelineParameter]:
    import yaml

    pipeline_spec = next(yaml.safe_load_all(pipeline_yaml))
    parameters = {}
    for name, p in pipeline_spec["root"]["inputDefinitions"]["parameters"].items():
        default = p.get("defaultValue")
        if p["parameterType"] == "NUMBER_INTEGER" and default is not None:
            default = int(default)  # the compiler writes integers as protobuf numbers: 10.0
        parameters[name] = PipelineParameter(name, p["parameterType"], not p.get("isOptional"), default)
    return parameters


def sent_pipeline_spec() -> dict[str, Any]:
    """The compiled pipeline as kfp.Client sends it in a run or a recurring run: each YAML document
    through its protobuf message and back (kfp/client/client.py: _extract_pipeline_yaml, then
    _PipelineDoc.to_dict), so int64 fields are strings and the key order protobuf's."""
    import yaml
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    pipeline, *platforms = yaml.safe_load_all(compiled_pipeline())
    platform = {key: value for doc in platforms for key, value in doc.items()}
    return {
        "pipeline_spec": json_format.MessageToDict(
            json_format.ParseDict(pipeline, pipeline_spec_pb2.PipelineSpec())
        ),
        "platform_spec": json_format.MessageToDict(
            json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
        ),
    }


@contextlib.contextmanager
def pipeline_package() -> Iterator[str]:
    """The compiled pipeline as a file (kfp.Client sends a package path), removed afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "pipeline.yaml")
        path.write_text(compiled_pipeline())
        yield str(path)
