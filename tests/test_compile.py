"""`trainboard compile` writes a pipeline YAML for Kubeflow Pipelines 2.x: it loads back with the kfp SDK,
and a golden check holds what matters on a cluster (GPU request, node selector, toleration, retries,
caching, image, parameters), failing on drift. Parameters added later do not break it: the golden names
the parameters it checks."""

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.support.cli import trainboard
from trainboard.component_image import DEFAULT_IMAGE

CHANNEL = "{{$.inputs.parameters['pipelinechannel--%s']}}"
TRAINING = "comp-trainboard"  # the training pipeline, as a component of the compiled one
RETRY = {"maxRetryCount": 2, "backoffDuration": "60s", "backoffFactor": 2.0, "backoffMaxDuration": "600s"}
GOLDEN = {
    "train resources": {
        "accelerator": {
            "resourceType": CHANNEL % "accelerator_type",
            "resourceCount": CHANNEL % "accelerator_count",
        }
    },
    "executors with an accelerator": ["exec-train"],
    # Inside the trials' loop the pipeline's parameters reach train as the loop's inputs (pipelinechannel--).
    "train kubernetes": {
        "nodeSelector": {
            "nodeSelectorJson": {"componentInputParameter": "pipelinechannel--gpu_node_selector"}
        },
        "tolerations": [{"tolerationJson": {"componentInputParameter": "pipelinechannel--gpu_tolerations"}}],
    },
    # Caching only where it is safe: data preparation, keyed on its inputs, which include the fingerprint
    # of the source's listing taken (uncached) at every execution: changed images are prepared again.
    "caching": {
        "start-run": False,
        "fingerprint-source": False,
        "prepare-data": True,
        "plan-trials": False,
        "train": False,
        "choose-trial": False,
        "evaluate": False,
        "promote": False,
    },
    "prepare-data keyed on": {
        "taskOutputParameter": {"outputParameterKey": "Output", "producerTask": "fingerprint-source"}
    },
    "retry": {
        "start-run": None,
        "fingerprint-source": RETRY,
        "prepare-data": RETRY,
        "plan-trials": RETRY,
        "train": RETRY,
        "choose-trial": RETRY,
        "evaluate": RETRY,
        "promote": RETRY,
    },
    # The run card is written by start_run, which the trials wait for (through plan-trials): the link
    # exists before training.
    "start-run outputs": {"card": "system.Markdown"},
    "trials wait for": ["plan-trials", "prepare-data"],
    "plan-trials waits for": ["prepare-data", "start-run"],
    # The tournament: a train task per trial of plan-trials' list, SWEEP_PARALLELISM at once (a GPU
    # each), their models collected (dsl.Collected) by choose-trial, whose one model evaluate and promote
    # judge. Without a sweep the list holds one trial: the run as before.
    "trials": {
        "iteratorPolicy": {"parallelismLimit": 4},
        "parameterIterator": {
            "itemInput": "pipelinechannel--plan-trials-Output-loop-item",
            "items": {"inputParameter": "pipelinechannel--plan-trials-Output"},
        },
    },
    "choose-trial collects": {
        "taskOutputArtifact": {
            "outputArtifactKey": "pipelinechannel--train-trained_model",
            "producerTask": "for-loop-1",
        }
    },
    "evaluate judges": {
        "taskOutputArtifact": {"outputArtifactKey": "chosen_model", "producerTask": "choose-trial"}
    },
    # start-run checks every parameter first (never retried): nothing else starts before it.
    "tasks with no upstream": ["start-run"],
    "parameters": {  # name: (type, default); None: required
        "root": ("STRING", None),
        "dataset": ("STRING", "tfds:caltech101"),
        "accelerator_type": ("STRING", "nvidia.com/gpu"),
        "accelerator_count": ("STRING", "1"),
        "gpu_node_selector": ("STRUCT", {}),
        "gpu_tolerations": (
            "LIST",
            [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        ),
        "tensorboard_url": ("STRING", ""),
        "run_name": ("STRING", ""),
        "min_accuracy": ("NUMBER_DOUBLE", 0.0),
        "min_improvement": ("NUMBER_DOUBLE", 0.0),
        "min_significance": ("NUMBER_DOUBLE", 0.0),
        "force_promote": ("BOOLEAN", False),
        "workers": ("NUMBER_INTEGER", 1),
        "sweep": ("STRING", ""),
    },
    # One YAML for one node and for many: the train task reads workers at run time and, above 1, hands off
    # to a TrainJob (components/train/handoff.py); its GPU request, retries and lease stay the one task's.
    "train gets workers": {"componentInputParameter": "pipelinechannel--workers"},
    # The decision and why are pipeline outputs, for a `with dsl.If(...)` deploy step or a caller.
    "outputs": {"promoted": "BOOLEAN", "champion": "STRING", "reason": "STRING", "chosen": "STRING"},
}


def compile_to(path: Path, **env: str) -> tuple[int, str]:
    import os

    result = trainboard("compile", "-o", str(path), env={**os.environ, **env})
    return result.returncode, result.stderr


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("compile") / "pipeline.yaml"
    code, stderr = compile_to(path)
    assert code == 0, stderr
    return path


def training_tasks(pipeline: dict) -> dict:
    """The training pipeline's tasks: the compiled pipeline nests it inside the exit handler's DAG
    (pipelines/training_pipeline.py, cluster_pipeline), and the train task inside the trials' loop (its
    task named "trials" there, and train named here)."""
    tasks = dict(pipeline["components"][TRAINING]["dag"]["tasks"])
    loop = next(name for name, task in tasks.items() if "parameterIterator" in task)
    tasks["trials"] = tasks.pop(loop)
    loop_tasks = pipeline["components"][tasks["trials"]["componentRef"]["name"]]["dag"]["tasks"]
    return {**tasks, **loop_tasks}


def what_matters(path: Path) -> dict:
    pipeline, platform = yaml.safe_load_all(path.read_text())
    executors = pipeline["deploymentSpec"]["executors"]
    tasks = training_tasks(pipeline)
    mine = GOLDEN["caching"]  # the tasks this check is about; tasks added later are not
    parameters = pipeline["root"]["inputDefinitions"]["parameters"]
    return {
        "train resources": executors["exec-train"]["container"]["resources"],
        "executors with an accelerator": [
            name for name, e in executors.items() if "accelerator" in e["container"].get("resources", {})
        ],
        "train kubernetes": platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train"],
        "caching": {name: tasks[name]["cachingOptions"].get("enableCache", False) for name in mine},
        "prepare-data keyed on": tasks["prepare-data"]["inputs"]["parameters"]["source_fingerprint"],
        "retry": {name: tasks[name].get("retryPolicy") for name in mine},
        "start-run outputs": {
            name: a["artifactType"]["schemaTitle"]
            for name, a in pipeline["components"]["comp-start-run"]["outputDefinitions"]["artifacts"].items()
        },
        "trials wait for": sorted(tasks["trials"]["dependentTasks"]),
        "plan-trials waits for": sorted(tasks["plan-trials"]["dependentTasks"]),
        "trials": {k: tasks["trials"][k] for k in ("iteratorPolicy", "parameterIterator")},
        "choose-trial collects": tasks["choose-trial"]["inputs"]["artifacts"]["trained_models"],
        "evaluate judges": tasks["evaluate"]["inputs"]["artifacts"]["trained_model"],
        "train gets workers": tasks["train"]["inputs"]["parameters"]["workers"],
        "tasks with no upstream": sorted(
            name for name, t in tasks.items() if not t.get("dependentTasks") and name != "train"
        ),
        "parameters": {
            name: (parameters[name]["parameterType"], parameters[name].get("defaultValue"))
            for name in GOLDEN["parameters"]
        },
        "outputs": {  # the training pipeline's: KFP refuses pipeline outputs from inside an exit handler
            name: p["parameterType"]
            for name, p in pipeline["components"][TRAINING]["outputDefinitions"]["parameters"].items()
            if name in GOLDEN["outputs"]
        },
    }


def test_compiled_pipeline_matches_the_golden(compiled):
    assert what_matters(compiled) == GOLDEN


def test_the_training_tasks_run_in_one_order_wherever_they_run(compiled):
    """kfp.local (kfp 2.17.3, kfp/local/graph_utils.py, topological_sort) starts the tasks in a DFS over the
    DAG's protobuf task map, whose order changes with the process's hash seed: two tasks that do not wait
    for one another run in either order, and a run's screen (the README's sample) with them. One chain
    leaves one order: at each step exactly one task has all it waits for done."""
    tasks = dict(next(yaml.safe_load_all(compiled.read_text()))["components"][TRAINING]["dag"]["tasks"])
    done: list[str] = []
    while len(done) < len(tasks):
        ready = [n for n, t in tasks.items() if n not in done and set(t.get("dependentTasks", [])) <= {*done}]
        assert len(ready) == 1, f"after {done}, these run in either order: {sorted(ready)}"
        done += ready


PLACEHOLDER = re.compile(r"\{\{\$\.inputs\.parameters\['pipelinechannel--([^']+)'\]\}\}")


def resource_parameters_not_strings(pipeline: dict) -> list[str]:
    """The KFP driver's rule (kubeflow/pipelines backend/src/v2/driver/resolve.go,
    resolvePodSpecInputRuntimeParameter, releases 2.4.0 to 2.17.0: it returns the runtime value's
    GetStringValue()): a pod-spec field fed by a pipeline parameter gets "" unless that parameter is a
    STRING, so a GPU count from an int parameter sets no limit at all. Returns every violation."""
    root = pipeline["root"]["inputDefinitions"]["parameters"]
    found = []
    for name, executor in pipeline["deploymentSpec"]["executors"].items():
        text = json.dumps(executor.get("container", {}).get("resources", {}))
        for parameter in PLACEHOLDER.findall(text):
            kind = root.get(parameter, {}).get("parameterType", "not a root parameter")
            if kind != "STRING":
                found.append(f"{name}: resources use {parameter} ({kind})")
    return found


def test_every_runtime_resource_value_comes_from_a_string_parameter(compiled):
    pipeline = next(yaml.safe_load_all(compiled.read_text()))
    assert resource_parameters_not_strings(pipeline) == []
    assert PLACEHOLDER.findall(json.dumps(pipeline["deploymentSpec"]["executors"]["exec-train"])), "checked"
    # The rule, failing on the YAML this project compiled before (an int GPU count):
    pipeline["root"]["inputDefinitions"]["parameters"]["accelerator_count"]["parameterType"] = (
        "NUMBER_INTEGER"
    )
    assert resource_parameters_not_strings(pipeline) == [
        "exec-train: resources use accelerator_count (NUMBER_INTEGER)"
    ]


def test_every_task_that_holds_the_runs_lease_names_the_kfp_run(compiled):
    """The run's lease (trainboard/artifacts/lease.py) is held by the KFP run: start_run takes it and
    train, evaluate and promote renew it with the same holder, the run's job id. The KFP driver resolves
    a constant input {{$.pipeline_job_uuid}} to the run's id for every task of the run, a retried one
    included (kubeflow/pipelines backend/src/v2/driver/resolve.go, resolveInputParameter: the case
    "{{$.pipeline_job_uuid}}" returns opts.RunID; there since #11599, 2.5.0: start_run refuses the literal
    from an older backend), so a retried train resumes under its own lease instead of being refused."""
    tasks = training_tasks(next(yaml.safe_load_all(compiled.read_text())))
    holders = {
        name: tasks[name]["inputs"]["parameters"]["job_id"]["runtimeValue"]["constant"]
        for name in ("start-run", "train", "evaluate", "promote")
    }
    assert set(holders.values()) == {"{{$.pipeline_job_uuid}}"}, holders


def test_compiled_pipeline_loads_back_with_the_kfp_sdk(compiled):
    from kfp import components

    pipeline = components.load_component_from_file(str(compiled))
    assert pipeline.name == "trainboard"
    inputs = pipeline.component_spec.inputs
    assert set(GOLDEN["parameters"]) <= set(inputs)
    assert not inputs["root"].optional and inputs["epochs"].optional
    # The checked parameters say what they are in the KFP UI.
    parameters = next(yaml.safe_load_all(compiled.read_text()))["root"]["inputDefinitions"]["parameters"]
    assert [name for name in GOLDEN["parameters"] if not parameters[name].get("description")] == []


def test_compile_is_reproducible_byte_for_byte(compiled, tmp_path):
    """Another process (another hash seed, another protobuf map order) compiles the same bytes: a
    pipeline in version control changes only when the pipeline does. KFP's own header lists
    gpu_tolerations's default in whichever order protobuf's map gives; ours is written from the spec."""
    code, stderr = compile_to(tmp_path / "again.yaml", PYTHONHASHSEED="1")
    assert code == 0, stderr
    assert (tmp_path / "again.yaml").read_bytes() == compiled.read_bytes()
    header = compiled.read_text().split("\n# Outputs:")[0]
    assert "#    epochs: int [Default: 10]\n" in header, "an integer reads as one, not 10.0"
    assert "#    gpu_tolerations: list [Default: [{'effect': 'NoSchedule', 'key': 'nvidia.com/gpu'," in header


def test_every_task_runs_the_pinned_image(compiled, tmp_path):
    def images(path: Path) -> set[str]:
        executors = next(yaml.safe_load_all(path.read_text()))["deploymentSpec"]["executors"]
        return {e["container"]["image"] for e in executors.values()}

    assert images(compiled) == {DEFAULT_IMAGE}
    digest = "registry.example.com:5000/ml/trainboard@sha256:" + "0123456789abcdef" * 4
    code, stderr = compile_to(tmp_path / "digest.yaml", TRAINBOARD_IMAGE=digest)
    assert code == 0, stderr
    assert images(tmp_path / "digest.yaml") == {digest}


def test_a_cluster_trains_the_sweeps_trials_as_many_at_once_as_compiled(compiled, tmp_path):
    """KFP fixes a loop's parallelism when it compiles (an int, not a parameter): TRAINBOARD_SWEEP_PARALLELISM
    sets it, as TRAINBOARD_IMAGE sets the image; 4 without it."""

    def limit(path: Path) -> int:
        tasks = training_tasks(next(yaml.safe_load_all(path.read_text())))
        return tasks["trials"]["iteratorPolicy"]["parallelismLimit"]

    assert limit(compiled) == 4
    code, stderr = compile_to(tmp_path / "eight.yaml", TRAINBOARD_SWEEP_PARALLELISM="8")
    assert code == 0, stderr
    assert limit(tmp_path / "eight.yaml") == 8


@pytest.mark.parametrize(
    ("given", "problem"),
    [("0", "must be greater than 0"), ("17", "must be at most 16"), ("four", "'four' is not a whole number")],
)
def test_a_sweep_parallelism_that_cannot_be_is_refused(tmp_path, given, problem):
    code, stderr = compile_to(tmp_path / "pipeline.yaml", TRAINBOARD_SWEEP_PARALLELISM=given)
    assert code == 2
    [line] = stderr.strip().splitlines()
    assert line.startswith("trainboard compile: error: TRAINBOARD_SWEEP_PARALLELISM: ") and problem in line
    assert not (tmp_path / "pipeline.yaml").exists()


@pytest.mark.parametrize(
    "image", ["registry.example.com/trainboard:latest", "registry.example.com:5000/trainboard"]
)
def test_an_unpinned_image_is_refused(tmp_path, image):
    code, stderr = compile_to(tmp_path / "pipeline.yaml", TRAINBOARD_IMAGE=image)
    assert code == 2
    assert stderr.strip().splitlines() == [
        f"trainboard compile: error: TRAINBOARD_IMAGE: {image!r} does not pin the component image; "
        "use REGISTRY/IMAGE:TAG (not latest) or REGISTRY/IMAGE@sha256:DIGEST"
    ]
    assert not (tmp_path / "pipeline.yaml").exists()


def test_a_deploy_step_can_run_for_promoted_models_only(tmp_path):
    """What docs/pipeline.md tells a team to do: nest the pipeline, its step under dsl.If on `promoted`."""
    from kfp import compiler, dsl

    from trainboard.pipelines.training_pipeline import training_pipeline

    @dsl.component(base_image="python:3.11")  # kfp's default today, named: no FutureWarning on its change
    def deploy(champion: str):
        print(champion)

    @dsl.pipeline(name="train-and-deploy")
    def train_and_deploy(root: str):
        trained = training_pipeline(root=root)
        with dsl.If(trained.outputs["promoted"] == True):  # noqa: E712 (a pipeline condition, not Python)
            deploy(champion=trained.outputs["champion"])

    compiler.Compiler().compile(train_and_deploy, str(tmp_path / "pipeline.yaml"))
    tasks = next(yaml.safe_load_all((tmp_path / "pipeline.yaml").read_text()))["root"]["dag"]["tasks"]
    (condition,) = [task for name, task in tasks.items() if name.startswith("condition")]
    assert condition["triggerPolicy"]["condition"] == (
        "inputs.parameter_values['pipelinechannel--trainboard-promoted'] == true"
    )


def test_the_exit_task_tells_the_team_once_every_other_task_has_ended(compiled):
    """dsl.ExitHandler: the notify task runs after the group that holds the whole training pipeline,
    whatever its tasks' states (ALL_UPSTREAM_TASKS_COMPLETED; the backend makes it the group's Argo exit
    hook, 2.4.0 on). It takes no other task's output (an exit task cannot), only pipeline parameters and
    the job id, by which it finds a generated run name (trainboard/job_runs.py)."""
    pipeline = next(yaml.safe_load_all(compiled.read_text()))
    tasks = pipeline["root"]["dag"]["tasks"]
    assert sorted(tasks) == ["exit-handler-1", "notify"]
    exit_task = tasks["notify"]
    assert exit_task["triggerPolicy"] == {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
    assert exit_task["dependentTasks"] == ["exit-handler-1"]
    [nested] = pipeline["components"]["comp-exit-handler-1"]["dag"]["tasks"].values()
    assert nested["componentRef"]["name"] == TRAINING
    assert set(GOLDEN["caching"]) <= set(training_tasks(pipeline)), "every training task is inside"
    inputs = exit_task["inputs"]["parameters"]
    assert {name: i.get("componentInputParameter") for name, i in inputs.items()} == {
        "root": "root",
        "run_name": "run_name",
        "tensorboard_url": "tensorboard_url",
        "job_id": None,
    }
    assert inputs["job_id"]["runtimeValue"]["constant"] == "{{$.pipeline_job_uuid}}"
    assert not exit_task["cachingOptions"].get("enableCache") and "retryPolicy" not in exit_task
    # No PipelineTaskFinalStatus input: backends before 2.14.0 refuse it (the exit task was written when the
    # minimum was 2.5.0; the trials' dsl.Collected has moved it to 2.14.0 since).
    assert "taskFinalStatus" not in json.dumps(exit_task)


def test_the_webhook_url_comes_from_an_optional_secret_never_a_parameter(compiled):
    """The Secret trainboard-notify, mounted on the exit task only, optional: a cluster without it runs
    and sends nothing. A volume, not an env var: kfp-kubernetes 2.17.3 writes SecretAsEnv.optional,
    which backends before 2.15.0 refuse (kubeflow/pipelines #12495), failing the exit task there."""
    from trainboard.components.notify.core import SECRET_DIR, SECRET_NAME, WEBHOOK_ENV

    pipeline, platform = yaml.safe_load_all(compiled.read_text())
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors["exec-notify"] == {
        "secretAsVolume": [
            {
                "mountPath": SECRET_DIR,
                "optional": True,
                "secretName": SECRET_NAME,
                "secretNameParameter": {"runtimeValue": {"constant": SECRET_NAME}},
            }
        ]
    }
    assert [name for name, e in executors.items() if "secretAsVolume" in e or "secretAsEnv" in e] == [
        "exec-notify",
        "exec-promote",  # the Model Registry's token: the test below
    ]
    parameters = pipeline["root"]["inputDefinitions"]["parameters"]
    assert not [name for name in parameters if "webhook" in name or "secret" in name]
    assert WEBHOOK_ENV not in compiled.read_text()


def test_the_model_registrys_token_comes_from_an_optional_secret_on_promote_never_a_parameter(compiled):
    from trainboard import model_registry

    pipeline, platform = yaml.safe_load_all(compiled.read_text())
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    [volume] = executors["exec-promote"]["secretAsVolume"]
    assert (volume["secretName"], volume["mountPath"], volume["optional"]) == (
        model_registry.SECRET_NAME,
        model_registry.SECRET_DIR,
        True,
    )
    parameters = pipeline["root"]["inputDefinitions"]["parameters"]
    assert "model_registry" in parameters and not [name for name in parameters if "token" in name]
