"""`trainboard compile` writes a KFP v2 pipeline YAML that asks for a GPU on the train task."""

from __future__ import annotations

import yaml
from conftest import trainboard


def test_compile_requests_accelerator_on_train(tmp_path):
    out = tmp_path / "pipeline.yaml"
    result = trainboard("compile", "-o", str(out))
    assert result.returncode == 0, result.stderr
    spec = yaml.safe_load(out.read_text())
    executors = spec["deploymentSpec"]["executors"]
    train = executors["exec-train"]["container"]
    accelerator = train["resources"]["accelerator"]
    assert accelerator["resourceType"] == "{{$.inputs.parameters['pipelinechannel--accelerator_type']}}"
    assert accelerator["resourceCount"] == "{{$.inputs.parameters['pipelinechannel--accelerator_count']}}"
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["accelerator_type"]["defaultValue"] == "nvidia.com/gpu"
    assert params["accelerator_count"]["defaultValue"] == 1
    assert "root" in params and not params["root"].get("isOptional")
    # Only training asks for an accelerator.
    assert [
        name for name, e in executors.items() if "accelerator" in e["container"].get("resources", {})
    ] == ["exec-train"]
