"""The train task's hand-off on a cluster (components/train/trainjob.py, handoff.py) against a loopback
stand-in of the Kubernetes API (tests/support/kube_api.py): the TrainJob it creates (validated against
Kubeflow Trainer v2.3.0's CRD schema, unknown fields refused), Complete, Failed, a retried task that finds
its job, a timeout, a cancellation, a missing CRD and a 403; and the whole path with the stand-in starting
the TrainJob's workers as processes here."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import asdict

import jsonschema
import pytest

from tests.support.crd import strict_schema
from tests.support.kube_api import NAMESPACE, OWN_POD, POD, kube_api
from tests.support.training import FAST
from trainboard import task_events
from trainboard.components.train.cluster_spec import INDEX_ENV, PORTS_ENV, TRAINJOB_ENV
from trainboard.components.train.trainjob import (
    RUNTIME,
    TrainJobError,
    run_trainjob,
    trainjob_manifest,
    trainjob_name,
)

FAST_WAIT = {"poll": 0.05, "timeout": 10.0}


def crd_schema(plural: str) -> dict:
    return strict_schema(f"{plural}.trainer.kubeflow.org")


def body(job: str = "job-1", **settings) -> dict:
    image = "registry/trainboard@sha256:abc"
    return trainjob_manifest(trainjob_name(job), 2, ["a", "b"], "run", image=image, **settings)


def test_the_trainjob_is_valid_for_trainer_v2_3_0_and_named_by_the_run_and_task():
    settings = {
        "resources": {"nvidia.com/gpu": "1"},
        "node_selector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "service_account": "pipeline-runner",
    }
    job = body(**settings)
    jsonschema.validate(job, crd_schema("trainjobs"))
    assert job["spec"]["trainer"]["numNodes"] == 2 and job["spec"]["runtimeRef"]["name"] == RUNTIME
    assert job["spec"]["trainer"]["env"] == [{"name": TRAINJOB_ENV, "value": job["metadata"]["name"]}]
    [patch] = job["spec"]["runtimePatches"]
    pod = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"][
        "template"
    ]
    assert pod["spec"] == {
        "nodeSelector": settings["node_selector"],
        "tolerations": settings["tolerations"],
        "serviceAccountName": "pipeline-runner",
    }
    jsonschema.validate(body(), crd_schema("trainjobs"))  # no GPU, no selector: no patch
    renamed = body(**settings)
    renamed["spec"]["podSpecOverrides"] = renamed["spec"].pop("runtimePatches")  # Trainer v2.0's name
    with pytest.raises(jsonschema.ValidationError, match="podSpecOverrides"):
        jsonschema.validate(renamed, crd_schema("trainjobs"))
    # The same KFP run and task: the same name (a retry finds its job); 11 + 12 characters, so that
    # <name>-node-0-<i> stays a valid host name.
    assert trainjob_name("job-1") == trainjob_name("job-1") != trainjob_name("job-2")
    assert len(trainjob_name("job-1")) == 23


def finish_later(api, kind: str = "Complete", after: float = 0.3, **condition) -> None:
    api.on_created = lambda job: threading.Timer(
        after, api.finish, (job["metadata"]["name"], kind), condition
    ).start()


def events(capsys) -> list[dict]:
    return [e for line in capsys.readouterr().out.splitlines() if (e := task_events.parse(line))]


def test_complete_shows_the_chiefs_epochs_and_deletes_the_job(capsys):
    with kube_api() as api:
        finish_later(api)
        epochs = iter([0, 0, 1, 2, 3])
        run_trainjob(api.clients()[0], NAMESPACE, body(), lambda: next(epochs, 3), epochs=3, **FAST_WAIT)
        assert len(api.calls("POST")) == 1 and len(api.calls("DELETE")) == 1 and api.jobs == {}
    shown = [(e["done"], e["total"]) for e in events(capsys) if e["kind"] == "progress"]
    assert shown == [(0, 3), (1, 3), (2, 3), (3, 3)], "each new committed epoch once"


def worker_pod(name: str, index: int, exit_code: int) -> dict:
    ended = {"terminated": {"exitCode": exit_code, "reason": "Error" if exit_code else "Completed"}}
    return {
        "metadata": {"name": name, "labels": {"batch.kubernetes.io/job-completion-index": str(index)}},
        "status": {"containerStatuses": [{"name": "node", "state": ended, "ready": False, "restartCount": 0,
                                          "image": "i", "imageID": "", "containerID": ""}]},
    }  # fmt: skip


def test_failed_names_the_failed_worker_and_its_error_and_deletes_the_job(caplog):
    with kube_api() as api:
        finish_later(api, "Failed", reason="JobSetFailed", message="jobset failed")
        name = trainjob_name("job-1")
        api.worker_pods = [worker_pod(f"{name}-node-0-0-a", 0, 0), worker_pod(f"{name}-node-0-1-b", 1, 137)]
        api.pod_logs[f"{name}-node-0-1-b"] = (
            "Epoch 2/3\nTraceback (most recent call last):\n  x\nMemoryError: out\n"
        )
        custom, core = api.clients()
        with pytest.raises(TrainJobError) as failed:
            run_trainjob(custom, NAMESPACE, body(), lambda: 1, epochs=3, core=core, **FAST_WAIT)
        assert str(failed.value) == (
            f"TrainJob {name} failed: JobSetFailed: jobset failed; worker 1 (pod {name}-node-0-1-b) exited "
            "with 137: MemoryError: out"
        )
        assert api.jobs == {} and len(api.calls("DELETE")) == 1
    assert "Epoch 2/3" in caplog.text, "the failed worker's last lines in the task's log"


def test_a_retried_task_finds_its_job_and_waits_on_it_instead_of_starting_another():
    with kube_api() as api:
        first = body()
        api.jobs[first["metadata"]["name"]] = first  # the first attempt's, still running
        threading.Timer(0.3, api.finish, (first["metadata"]["name"],)).start()
        run_trainjob(api.clients()[0], NAMESPACE, body(), lambda: 2, epochs=3, **FAST_WAIT)
        assert len(api.calls("POST")) == 1, "one create, answered 409"
        assert len(api.calls("GET")) >= 2 and api.jobs == {}


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (b"\xff\xfe<html>", "bytes that are not UTF-8 text"),
        (
            b"<html>Sign in</html>",
            "not a TrainJob (status.conditions is not a list of objects; it answered str)",
        ),
        (["a", "list"], "it answered list"),
        ({"status": "Running"}, "status.conditions is not a list of objects"),
        ({"status": {"conditions": {"type": "Complete"}}}, "status.conditions is not a list of objects"),
        ({"status": {"conditions": ["Complete"]}}, "status.conditions is not a list of objects"),
    ],
    ids=["not-utf8", "login-page", "a-list", "status-a-string", "conditions-an-object", "conditions-strings"],
)
def test_a_kubernetes_api_that_answers_wrongly_fails_the_task_in_one_line_and_deletes_the_job(answer, words):
    with kube_api() as api:
        api.wrong = answer
        with pytest.raises(TrainJobError) as failed:
            run_trainjob(api.clients()[0], NAMESPACE, body(), lambda: 0, epochs=3, **FAST_WAIT)
        assert words in str(failed.value) and "\n" not in str(failed.value)
        assert f"GET trainjobs/{trainjob_name('job-1')}" in str(failed.value)
        assert api.jobs == {} and len(api.calls("DELETE")) == 1


def test_a_job_that_never_ends_times_out_and_is_deleted():
    with kube_api() as api:
        with pytest.raises(TrainJobError, match=r"did not end within 0\.3 s"):
            run_trainjob(api.clients()[0], NAMESPACE, body(), lambda: 0, epochs=3, poll=0.05, timeout=0.3)
        assert api.jobs == {}


def test_a_cancelled_task_deletes_its_job():
    """KFP's cancellation stops the task's pod: SIGTERM, then the deletion runs before the task ends."""
    with kube_api() as api:
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
        with pytest.raises(TrainJobError, match="the task was stopped"):
            run_trainjob(api.clients()[0], NAMESPACE, body(), lambda: 0, epochs=3, **FAST_WAIT)
        assert api.jobs == {} and len(api.calls("DELETE")) == 1
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, "the task's own handler is back"


@pytest.mark.parametrize(
    ("problem", "words"),
    [
        (
            "crd",
            "the cluster has no TrainJob API (trainer.kubeflow.org/v1alpha1): install Kubeflow Trainer "
            "v2.3.0",
        ),
        ("forbidden", f"may not manage trainjobs.trainer.kubeflow.org in namespace {NAMESPACE}: grant it"),
    ],
)
def test_a_cluster_without_trainer_or_rights_says_in_one_line_what_to_install_or_grant(problem, words):
    with kube_api() as api:
        if problem == "crd":
            api.crd = False
        else:
            api.forbidden = True
        with pytest.raises(TrainJobError) as refused:
            run_trainjob(api.clients()[0], NAMESPACE, body(), lambda: 0, epochs=3, **FAST_WAIT)
    message = str(refused.value)
    assert words in message and "\n" not in message and "manifests/components/multi-worker" in message
    assert refused.value.__suppress_context__, "the one line, not the client's exception chain"


def start_workers(api, job: dict) -> None:
    """The stand-in of Trainer's controller: the TrainJob's nodes as processes here (loopback ports for
    the pods' host names), Complete when all end well, else Failed."""
    from trainboard.components.train.local_workers import free_ports

    trainer = job["spec"]["trainer"]
    ports = ",".join(map(str, free_ports(trainer["numNodes"])))
    env = {**os.environ, **{e["name"]: e["value"] for e in trainer["env"]}, PORTS_ENV: ports}
    command = [sys.executable, *trainer["command"][1:], *trainer["args"]]
    processes = [
        subprocess.Popen(
            command, env={**env, INDEX_ENV: str(i)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for i in range(trainer["numNodes"])
    ]

    def watch() -> None:
        codes = [p.wait() for p in processes]
        api.finish(job["metadata"]["name"], "Complete" if codes == [0] * len(codes) else "Failed")

    threading.Thread(target=watch, daemon=True).start()


@pytest.mark.slow
def test_the_hand_off_trains_on_the_trainjobs_workers_and_returns_the_chiefs_model(
    demo_data, tmp_path, monkeypatch
):
    from trainboard.artifacts.model import load_trained
    from trainboard.components.train.handoff import train_on_trainjob

    monkeypatch.setenv("HOSTNAME", POD)
    root, model_dir = str(tmp_path / "root"), tmp_path / "model"
    config = type(FAST)(**{**asdict(FAST), "workers": 2})
    with kube_api() as api:
        posted = []
        api.on_created = lambda job: (posted.append(job), start_workers(api, job))
        info = train_on_trainjob(
            demo_data, str(model_dir), root, "r", config=config, job_id="job-1",
            apis=api.clients(), namespace=NAMESPACE, poll=0.2, timeout=240,
        )  # fmt: skip
        assert len(api.calls("POST")) == 1 and api.jobs == {}, "one TrainJob, deleted at the end"
    assert info.epochs == 2 and load_trained(str(model_dir))[1].epochs == 2
    # The workers got what the train pod got (tests/support/kube_api.py, OWN_POD).
    [job] = posted
    assert job["spec"]["trainer"]["image"] == OWN_POD["spec"]["containers"][0]["image"]
    assert job["spec"]["trainer"]["resourcesPerNode"] == {"limits": {"nvidia.com/gpu": "1"}}
    [patch] = job["spec"]["runtimePatches"]
    pod = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"][
        "template"
    ]
    assert pod["spec"]["serviceAccountName"] == "pipeline-runner"
    assert pod["spec"]["nodeSelector"] == OWN_POD["spec"]["nodeSelector"]
    assert json.loads((model_dir / "trainboard_model.json").read_text())["settings"]["workers"] == 2
