"""Parameters are declared once, in trainboard/config.py (DataConfig, TrainingConfig, PromotionRule and
CLUSTER_DEFAULTS). Every other place that names them is checked here against that declaration: the
pipeline's signature (name, type, the cluster default) and its descriptions in KFP's UI (the help text),
each component's signature (name, type), `trainboard local`'s options (the local default, the help) and
the checks (each declared bound is the range the checks enforce). Each check is also shown failing on a
drifted copy."""

from __future__ import annotations

import inspect
import math
from dataclasses import fields, replace
from typing import Any

import docstring_parser
import pytest

from trainboard.app.cli import build_parser
from trainboard.components.prepare_data.component import prepare_data
from trainboard.components.promote.component import promote
from trainboard.components.start_run.component import start_run
from trainboard.components.train.component import train
from trainboard.config import (
    CLUSTER_DEFAULTS,
    CONFIGS,
    MAX_EPOCHS,
    Bounds,
    DataConfig,
    PromotionRule,
    TrainingConfig,
    cluster_default,
)
from trainboard.config_checks import check_pipeline_parameters
from trainboard.errors import UsageError
from trainboard.pipelines.parameter_docs import args_from_config
from trainboard.pipelines.training_pipeline import cluster_pipeline, training_pipeline

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


def _task_arguments(name: str) -> dict[str, str]:
    """The pipeline parameter each input of task ``name`` comes from, by input name. A task inside the
    trials' loop (train) gets the loop's input ``pipelinechannel--NAME``, which the loop task takes from
    the pipeline parameter NAME."""
    spec = training_pipeline.pipeline_spec
    root = spec.root.dag.tasks
    if name in root:
        return {k: v.component_input_parameter for k, v in root[name].inputs.parameters.items()}
    loop = next(t for t in root.values() if t.HasField("parameter_iterator"))
    task = spec.components[loop.component_ref.name].dag.tasks[name]
    through = {k: v.component_input_parameter for k, v in loop.inputs.parameters.items()}
    return {k: through.get(v.component_input_parameter, "") for k, v in task.inputs.parameters.items()}


def test_the_pipeline_passes_each_component_the_same_parameter():
    """Wiring by name: each config input of a task is the pipeline parameter of that name."""
    for task, _, configs in COMPONENTS:
        arguments = _task_arguments(task.replace("_", "-"))
        for config in configs:
            for f in fields(config):
                assert arguments[f.name] == f.name, (task, f.name)


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


def documented(pipeline_func: Any) -> list[str]:
    """The parameters the Args section of ``pipeline_func``'s docstring describes, in its order."""
    return [p.arg_name for p in docstring_parser.parse(inspect.getdoc(pipeline_func)).params]


@pytest.mark.parametrize("pipeline", [training_pipeline, cluster_pipeline], ids=["training", "cluster"])
def test_the_docstring_describes_exactly_the_signatures_parameters(pipeline):
    """Its Args, from which KFP takes each parameter's description: the config parameters' entries are
    made from their help (pipelines/parameter_docs.py, args_from_config), the others written out."""
    assert documented(pipeline.pipeline_func) == list(inspect.signature(pipeline.pipeline_func).parameters)
    assert [name for name, spec in pipeline.component_spec.inputs.items() if not spec.description] == []


def stand_in(doc: str) -> Any:
    """A function of the pipeline's signature with docstring ``doc``."""

    def pipeline_func(*args: Any) -> None: ...

    pipeline_func.__signature__ = inspect.signature(training_pipeline.pipeline_func)  # type: ignore[attr-defined]
    pipeline_func.__doc__ = doc
    return pipeline_func


def test_a_docstring_that_drifts_from_the_signature_is_refused():
    written = """Train.

    Args:
        root: The root.
        run_name: The run.
        accelerator_type: The type.
        accelerator_count: The count.
        gpu_node_selector: The selector.
        gpu_tolerations: The tolerations.
        tensorboard_url: The URL.
    """
    assert documented(args_from_config(stand_in(written))) == documented(training_pipeline.pipeline_func)
    without_root = written.replace("        root: The root.\n", "")
    with pytest.raises(ValueError, match="each parameter needs one entry"):
        args_from_config(stand_in(without_root))
    with pytest.raises(ValueError, match="each parameter needs one entry"):  # written out twice
        args_from_config(stand_in(written + "    epochs: Epochs.\n    "))


BOUNDS = {name: f.metadata["bounds"] for name, f in CONFIG_FIELDS.items() if f.metadata["bounds"]}


def edges(name: str, bounds: Bounds) -> list[tuple[float, bool]]:
    """Values at, just inside and just past each end of ``bounds`` (by 1 for an integer field), each with
    whether ``bounds`` admits it."""

    def step(value: float, toward: float) -> float:
        return (
            value + (1 if toward > 0 else -1)
            if CONFIG_FIELDS[name].type == "int"
            else math.nextafter(value, toward)
        )

    low = bounds.above if bounds.above is not None else bounds.at_least
    found = [(low, bounds.above is None), (step(low, math.inf), True), (step(low, -math.inf), False)]
    high = bounds.at_most if bounds.at_most is not None else bounds.below
    if high is not None:
        found += [(high, bounds.below is None), (step(high, -math.inf), True), (step(high, math.inf), False)]
    return found


def range_refusal(name: str, value: float) -> str | None:
    """What the checks of the pipeline's parameters (every task's, submit's) say of ``value`` for ``name``
    among the cluster defaults, where they refuse it for its range ("must be ..."); None where they do not
    (a refusal of a value that depends on another is not one: batch_size a multiple of workers)."""
    values = {name: cluster_default(name) for name in CONFIG_FIELDS}
    try:
        check_pipeline_parameters({**values, "accelerator_count": "1", "tensorboard_url": "", name: value})
    except UsageError as e:
        if e.field == name and e.problem.startswith("must be "):
            return e.problem
    return None


def bound_drift(name: str, bounds: Bounds) -> list[str]:
    """Where the checks' verdict on ``name`` differs from ``bounds``'s, at and around its ends."""
    return [
        f"{name}={value!r}: declared {'in' if within else 'out of'} range, checked the other way"
        for value, within in edges(name, bounds)
        if (range_refusal(name, value) is None) != within
    ]


def test_every_declared_bound_is_the_range_the_checks_enforce():
    assert set(BOUNDS) >= {"epochs", "learning_rate", "seed", "validation_fraction", "min_accuracy"}
    assert {name: bound_drift(name, bounds) for name, bounds in BOUNDS.items()} == {
        name: [] for name in BOUNDS
    }


def test_a_bound_the_checks_do_not_enforce_is_caught():
    assert bound_drift("epochs", replace(BOUNDS["epochs"], at_most=MAX_EPOCHS - 1)) == [
        f"epochs={MAX_EPOCHS}: declared out of range, checked the other way"
    ]
    assert bound_drift("label_smoothing", replace(BOUNDS["label_smoothing"], below=None, at_most=1)) == [
        "label_smoothing=1: declared in range, checked the other way"
    ]
    assert bound_drift("validation_fraction", Bounds(at_least=0, below=1)) == [
        "validation_fraction=0: declared in range, checked the other way"
    ]


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [  # each shape of range once, and NaN (which lies in none)
        ("epochs", 0, "must be greater than 0, got 0"),
        ("epochs", MAX_EPOCHS + 1, f"must be at most {MAX_EPOCHS}, got {MAX_EPOCHS + 1}"),
        ("learning_rate", 11.0, "must be at most 10.0, got 11.0"),
        ("learning_rate", math.nan, "must be greater than 0, got nan"),
        ("max_image_pixels", -1, "must be greater than 0, got -1"),
        ("early_stopping_patience", -1, "must be 0 or more, got -1"),
        ("test_fraction", 1.0, "must be between 0 and 1 (exclusive), got 1.0"),
        ("label_smoothing", 1.0, "must be in [0, 1), got 1.0"),
        ("race_margin", -0.1, "must be in [0, 1) (an accuracy gap; 0: off), got -0.1"),
        ("seed", 2**32, "must be in [0, 4294967295], got 4294967296"),
        ("min_accuracy", 1.5, "must be in [0, 1] (an accuracy), got 1.5"),
        ("min_significance", math.nan, "must be in [0, 1] (a p-value; 0 disables the test), got nan"),
    ],
)
def test_a_value_out_of_range_is_refused_saying_the_range(name, value, problem):
    assert range_refusal(name, value) == problem
