"""Parameters are declared once, in trainboard/config.py (DataConfig, TrainingConfig, PromotionRule and
CLUSTER_DEFAULTS). Every other place that names them is checked here against that declaration: the
pipeline's signature (name, type, the cluster default) and its descriptions in KFP's UI (the help text),
each component's signature (name, type), and `trainboard local`'s options (the local default, the help).
Each check is also shown failing on a drifted copy."""

from __future__ import annotations

import inspect
from dataclasses import fields
from typing import Any

import pytest

from trainboard.app.cli import build_parser
from trainboard.components.prepare_data.component import prepare_data
from trainboard.components.promote.component import promote
from trainboard.components.start_run.component import start_run
from trainboard.components.train.component import train
from trainboard.config import (
    CLUSTER_DEFAULTS,
    CONFIGS,
    DataConfig,
    PromotionRule,
    TrainingConfig,
    cluster_default,
)
from trainboard.pipelines.training_pipeline import training_pipeline

CONFIG_FIELDS = {f.name: f for config in CONFIGS for f in fields(config)}
# The KFP SDK's names of Python parameter types, as a compiled component spec states them.
KFP_TYPES = {"str": "String", "int": "Integer", "float": "Float", "bool": "Boolean"}


def declared(name: str) -> tuple[str, Any, str]:
    """(type, cluster default, help) of config field ``name``."""
    field = CONFIG_FIELDS[name]
    return KFP_TYPES[field.type], cluster_default(name), field.metadata["help"]


def normalise(text: str | None) -> str:
    return " ".join((text or "").split())


def pipeline_drift(inputs: dict[str, Any]) -> list[str]:
    """How the pipeline's inputs (KFP InputSpecs: type, default, description) differ from the configs."""
    drift = [f"pipeline lacks {name}" for name in CONFIG_FIELDS if name not in inputs]
    for name, spec in inputs.items():
        if name not in CONFIG_FIELDS:
            continue
        kind, default, help_text = declared(name)
        if spec.type != kind:
            drift.append(f"pipeline {name}: type {spec.type}, declared {kind}")
        if spec.default != default:
            drift.append(f"pipeline {name}: default {spec.default!r}, declared {default!r}")
        if normalise(spec.description) != normalise(help_text):
            drift.append(f"pipeline {name}: description {spec.description!r}, declared {help_text!r}")
    return drift


def component_drift(component: str, inputs: dict[str, Any], configs: tuple[type, ...]) -> list[str]:
    """How a component's inputs differ from the fields of ``configs`` it takes (all of them, same types)."""
    drift = [
        f"{component} lacks {f.name}" for config in configs for f in fields(config) if f.name not in inputs
    ]
    for name, spec in inputs.items():
        if name in CONFIG_FIELDS and spec.type != declared(name)[0]:
            drift.append(f"{component} {name}: type {spec.type}, declared {declared(name)[0]}")
    return drift


COMPONENTS = [
    ("start_run", start_run, CONFIGS),  # the first task checks them all
    ("train", train, (TrainingConfig,)),
    ("prepare_data", prepare_data, (DataConfig,)),
    ("promote", promote, (PromotionRule,)),
]


def test_the_pipeline_declares_every_config_parameter_as_declared():
    assert pipeline_drift(training_pipeline.component_spec.inputs) == []
    assert training_pipeline.component_spec.inputs["model"].default == CLUSTER_DEFAULTS["model"] == "vgg16"


@pytest.mark.parametrize(("name", "component", "configs"), COMPONENTS, ids=[c[0] for c in COMPONENTS])
def test_each_component_takes_its_configs_fields_as_declared(name, component, configs):
    assert component_drift(name, component.component_spec.inputs, configs) == []


def test_the_pipeline_passes_each_component_the_same_parameter():
    """Wiring by name: each config input of a task is the pipeline parameter of that name."""
    dag = training_pipeline.pipeline_spec.root.dag.tasks
    for task, _, configs in COMPONENTS:
        arguments = dag[task.replace("_", "-")].inputs.parameters
        for config in configs:
            for f in fields(config):
                assert arguments[f.name].component_input_parameter == f.name, (task, f.name)


def test_local_options_are_the_configs_fields_with_their_local_defaults_and_help():
    local = next(
        action.choices["local"]
        for action in build_parser()._actions
        if getattr(action, "choices", None) and "local" in action.choices
    )
    options = {action.dest: action for action in local._actions}
    for name, field in CONFIG_FIELDS.items():
        option = options[name]
        assert option.help.startswith(field.metadata["help"]), name
        if name != "image_size":  # the model's own unless given
            assert option.default == field.default, name


def drifted(inputs: dict[str, Any], name: str, **change: Any) -> dict[str, Any]:
    """A copy of ``inputs`` with one InputSpec changed (or removed, with no change)."""
    copy = dict(inputs)
    if change:
        copy[name] = type(inputs[name])(**{**vars(inputs[name]), **change})
    else:
        del copy[name]
    return copy


def test_drift_in_the_pipeline_is_caught():
    inputs = training_pipeline.component_spec.inputs
    renamed = {("model_name" if k == "model" else k): v for k, v in inputs.items()}
    assert pipeline_drift(renamed) == ["pipeline lacks model"]
    assert pipeline_drift(drifted(inputs, "learning_rate", type="Integer")) == [
        "pipeline learning_rate: type Integer, declared Float"
    ]
    assert pipeline_drift(drifted(inputs, "validation_fraction", default=0.2)) == [
        "pipeline validation_fraction: default 0.2, declared 0.1"
    ]
    [message] = pipeline_drift(drifted(inputs, "epochs", description="Epochs."))
    assert message.startswith("pipeline epochs: description 'Epochs.'")


def test_drift_in_a_component_is_caught():
    inputs = train.component_spec.inputs
    renamed = {("model_name" if k == "model" else k): v for k, v in inputs.items()}
    assert component_drift("train", renamed, (TrainingConfig,)) == ["train lacks model"]
    assert component_drift("train", drifted(inputs, "seed", type="Float"), (TrainingConfig,)) == [
        "train seed: type Float, declared Integer"
    ]
    assert component_drift(
        "promote", drifted(promote.component_spec.inputs, "force_promote"), (PromotionRule,)
    ) == ["promote lacks force_promote"]


def test_the_signature_is_written_out_for_the_ui():
    """Explicit parameters (no **kwargs), so KFP's UI lists each with its type and default."""
    signature = inspect.signature(training_pipeline.pipeline_func)
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in signature.parameters.values())
    assert set(CONFIG_FIELDS) <= set(signature.parameters)
