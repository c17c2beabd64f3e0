"""The compiled pipeline, as `trainboard compile` writes it, and its parameters as the YAML declares them
(what the KFP API server will check a run's arguments against)."""

from __future__ import annotations

import functools
import tempfile
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
    """The pipeline YAML exactly as `trainboard compile` writes it (compiled once per process)."""
    from kfp import compiler

    from pipelines.training_pipeline import training_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "pipeline.yaml")
        compiler.Compiler().compile(training_pipeline, str(path))
        return path.read_text()


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
