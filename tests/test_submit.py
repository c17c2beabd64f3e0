"""`trainboard submit` / `schedule` against a loopback Kubeflow Pipelines API: what reaches the server
(parameters and their types, cron, mode, concurrency, catch-up, service account, token), what is printed,
and bad input stopped with a clear error before anything is sent."""

from __future__ import annotations

import math
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.cli import BIN
from tests.support.cli import in_process as cli
from tests.support.gcs import free_port
from tests.support.kfp_server import API, KFPServer

TENSORBOARD = "https://tensorboard.example.com"
ROOT = "gs://team-bucket/trainboard"


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No settings from the developer's machine: a fresh HOME (config file, kfp context), no env."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("KF_PIPELINES_ENDPOINT", "KF_PIPELINES_TOKEN", "TRAINBOARD_TENSORBOARD_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("TRAINBOARD_CONFIG", raising=False)


def submitted_runs(server: KFPServer) -> list[dict]:
    return server.bodies("POST", "/runs")


def test_submit_sends_typed_parameters_service_account_and_token_and_prints_links(capsys):
    server = KFPServer(token="s3cret")
    try:
        code, out, err = cli(
            capsys,
            "submit",
            "--endpoint", server.url + "/",
            "--token", "s3cret",
            "--experiment", "nightly",
            "--run-name", "resnet.try-1",
            "--service-account", "trainboard-runner",
            "--tensorboard-url", TENSORBOARD,
            "--param", f"root={ROOT}/",
            "--param", "model=resnet50",
            "--param", "epochs=3",
            "--param", "learning_rate=0.01",
            "--param", 'gpu_node_selector={"cloud.google.com/gke-accelerator": "nvidia-l4"}',
        )  # fmt: skip
    finally:
        server.stop()
    assert code == 0, err
    assert {r.headers.get("authorization") for r in server.requests} == {"Bearer s3cret"}
    assert [(r.method, r.path) for r in server.requests if r.method == "POST"] == [
        ("POST", f"{API}/experiments"),
        ("POST", f"{API}/runs"),
    ]
    assert server.bodies("POST", "/experiments")[0]["display_name"] == "nightly"
    [run] = submitted_runs(server)
    assert run["display_name"] == "resnet.try-1"
    assert run["service_account"] == "trainboard-runner"
    assert run["experiment_id"] == next(iter(server.experiments))
    parameters = run["runtime_config"]["parameters"]
    assert parameters == {
        "root": ROOT,  # normalised
        "model": "resnet50",
        "epochs": 3,
        "learning_rate": 0.01,
        "gpu_node_selector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
        "run_name": "resnet.try-1",  # the KFP run and the TensorBoard run carry one name
        "tensorboard_url": TENSORBOARD,  # the setting reaches the run card
    }
    assert type(parameters["epochs"]) is int and type(parameters["learning_rate"]) is float
    assert run["pipeline_spec"]["pipeline_spec"]["pipelineInfo"]["name"] == "trainboard"
    assert (
        "exec-train"
        in run["pipeline_spec"]["platform_spec"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    )
    assert f"KFP run:     {server.url}/#/runs/details/{next(iter(server.runs))}" in out
    assert f"TensorBoard: {TENSORBOARD}/?runFilter=%5Eresnet%5C.try-1%28%2F%7C%24%29&tagFilter=" in out


def test_submit_gives_every_execution_its_own_run_name(capsys, kfp):
    for _ in range(2):
        code, _, err = cli(capsys, "submit", "--endpoint", kfp.url, "--param", f"root={ROOT}")
        assert code == 0, err
    names = [run["display_name"] for run in submitted_runs(kfp)]
    assert len(set(names)) == 2
    for run, name in zip(submitted_runs(kfp), names, strict=True):
        assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", name)
        assert run["runtime_config"]["parameters"]["run_name"] == name
    assert len(kfp.experiments) == 1, "the experiment is created once, then found"


@pytest.mark.parametrize(("final_state", "exit_code"), [("SUCCEEDED", 0), ("FAILED", 1), ("CANCELED", 1)])
def test_submit_wait_follows_the_run_to_its_end(capsys, final_state, exit_code):
    server = KFPServer(final_state=final_state)
    try:
        code, out, _ = cli(capsys, "submit", "--endpoint", server.url, "--param", f"root={ROOT}", "--wait")
    finally:
        server.stop()
    assert code == exit_code
    assert [r.path for r in server.requests if r.method == "GET"][-1] == f"{API}/runs/run-1"
    assert out.strip().splitlines()[-1].endswith(final_state)


def test_settings_come_from_flag_then_environment_then_config_file(capsys, kfp, tmp_path, monkeypatch):
    unreachable = f"http://127.0.0.1:{free_port()}"
    config = tmp_path / "trainboard.toml"
    config.write_text(
        f'endpoint = "{unreachable}"\nexperiment = "from-config"\ntensorboard_url = "{TENSORBOARD}"\n'
    )
    monkeypatch.setenv("TRAINBOARD_CONFIG", str(config))
    monkeypatch.setenv("KF_PIPELINES_ENDPOINT", kfp.url)  # the environment beats the config file
    code, out, err = cli(capsys, "submit", "--param", f"root={ROOT}")
    assert code == 0, err
    assert kfp.bodies("POST", "/experiments")[0]["display_name"] == "from-config"
    assert f"TensorBoard: {TENSORBOARD}/?runFilter=" in out

    monkeypatch.setenv("KF_PIPELINES_ENDPOINT", unreachable)  # the flag beats the environment
    code, _, err = cli(capsys, "submit", "--endpoint", kfp.url, "--param", f"root={ROOT}")
    assert code == 0, err
    assert len(submitted_runs(kfp)) == 2


def test_a_refusal_by_the_server_exits_1_with_its_reason(capsys):
    server = KFPServer(refusal="Invalid input error: service account not found")
    try:
        code, out, err = cli(capsys, "submit", "--endpoint", server.url, "--param", f"root={ROOT}")
    finally:
        server.stop()
    assert code == 1 and out == ""
    assert err.startswith(f"trainboard submit: error: {server.url} answered 400 Bad Request: ")
    assert "service account not found" in err


def test_config_file_given_with_config_is_checked(capsys, kfp, tmp_path):
    config = tmp_path / "team.toml"
    config.write_text(f'endpoint = "{kfp.url}"\ntoken = "t"\n')
    code, _, err = cli(capsys, "submit", "--config", str(config), "--param", f"root={ROOT}")
    assert code == 0, err
    assert kfp.requests[-1].headers["authorization"] == "Bearer t"

    sent = len(kfp.requests)
    config.write_text(f'endpiont = "{kfp.url}"\n')
    code, _, err = cli(capsys, "submit", "--config", str(config), "--param", f"root={ROOT}")
    assert code == 2 and "--config: " in err and "unknown setting 'endpiont'" in err
    code, _, err = cli(capsys, "submit", "--config", str(tmp_path / "none.toml"), "--param", f"root={ROOT}")
    assert code == 2 and "none.toml does not exist" in err
    assert len(kfp.requests) == sent


def test_schedule_is_enabled_one_at_a_time_without_catchup(capsys, kfp):
    code, out, err = cli(
        capsys,
        "schedule", "create",
        "--endpoint", kfp.url,
        "--name", "nightly",
        "--cron", "0 30 2 * * MON-FRI",
        "--service-account", "trainboard-runner",
        "--param", f"root={ROOT}",
        "--param", "epochs=20",
    )  # fmt: skip
    assert code == 0, err
    [recurring] = kfp.bodies("POST", "/recurringruns")
    assert recurring["display_name"] == "nightly"
    assert recurring["trigger"] == {"cron_schedule": {"cron": "0 30 2 * * MON-FRI"}}
    assert recurring["mode"] == "ENABLE"
    assert recurring["max_concurrency"] == 1
    assert recurring["no_catchup"] is True
    assert recurring["service_account"] == "trainboard-runner"
    # No run_name: each execution names its own run from its job id (start_run).
    assert recurring["runtime_config"]["parameters"] == {"root": ROOT, "epochs": 20}
    assert recurring["pipeline_spec"]["pipeline_spec"]["pipelineInfo"]["name"] == "trainboard"
    assert f"{kfp.url}/#/recurringrun/details/recurring-1" in out


BAD_INPUT = [
    # (command and arguments, the option named, words the message must hold)
    (["submit", "--param", "epochs=many"], "--param", ["epochs='many' is not an integer", "default 10"]),
    (["submit", "--param", "learning_rate=fast"], "--param", ["learning_rate='fast' is not a number"]),
    (["submit", "--param", "gpu_tolerations={}"], "--param", ["is not a JSON list"]),
    (["submit", "--param", "epoch=3"], "--param", ["unknown parameter 'epoch'", "epochs", "root"]),
    (["submit", "--param", "epochs"], "--param", ["'epochs' is not KEY=VALUE"]),
    (["submit", "--param", "epochs=3", "--param", "epochs=4"], "--param", ["epochs is given twice"]),
    (["submit", "--param", "root=/data/runs"], "--param", ["local path", "gs://BUCKET"]),
    (["submit", "--param", "root=s3://b/x"], "--param", ["s3:// is not supported"]),
    (["submit", "--param", "run_name=x"], "--param", ["--run-name"]),
    (["submit", "--param", "min_accuracy=1.2"], "--param", ["min_accuracy=1.2: must be in [0, 1]"]),
    (["submit", "--run-name", "a/b"], "--run-name", ["no slashes"]),
    (["submit", "--tensorboard-url", "tb.example.com"], "--tensorboard-url", ["not an http:// or https://"]),
    (
        ["schedule", "create", "--name", "n", "--cron", "0 3 * * *"],
        "--cron",
        ["has 5 fields", "6 fields", "second"],
    ),
    (["schedule", "create", "--name", "n", "--cron", "0 0 24 * * *"], "--cron", ["hour '24'", "0-23"]),
    (["schedule", "create", "--name", "n", "--cron", "0 0 3 * * FUN"], "--cron", ["day-of-week 'FUN'"]),
    (["schedule", "create", "--name", "n", "--cron", "0 */0 * * * *"], "--cron", ["minute '*/0'"]),
    (
        ["schedule", "create", "--name", "n", "--cron", "0 0 3 * * *", "--max-concurrency", "0"],
        "--max-concurrency",
        [],
    ),
    (
        ["schedule", "create", "--name", "n", "--cron", "0 0 3 * * *", "--param", "run_name=x"],
        "--param",
        ["unique"],
    ),
    # The dataset, as `trainboard local` checks it (check_source), for the cluster.
    (
        ["submit", "--param", "dataset=tfds:caltech10"],
        "--param",
        ["dataset='tfds:caltech10': tfds:caltech10 is not a TFDS dataset", "did you mean tfds:caltech101"],
    ),
    (
        ["submit", "--param", "dataset=folder:/local/path"],
        "--param",
        ["dataset='folder:/local/path'", "no cluster task can read", "folder:gs://BUCKET/PREFIX"],
    ),
    (
        ["schedule", "create", "--name", "n", "--cron", "0 0 3 * * *", "--param", "dataset=folder:images"],
        "--param",
        ["folder:gs://BUCKET/PREFIX"],
    ),
    (
        ["schedule", "create", "--name", " nightly", "--cron", "0 0 3 * * *"],
        "--name",
        ["starts or ends with a space"],
    ),
    (["schedule", "create", "--name", "", "--cron", "0 0 3 * * *"], "--name", ["is empty"]),
    (
        ["schedule", "create", "--name", "nightly\u202e", "--cron", "@daily"],
        "--name",
        ["U+202E", "right-to-left"],
    ),
    (["schedule", "create", "--name", "n", "--cron", "0 0 3 31 2 *"], "--cron", ["never runs"]),
    (["schedule", "create", "--name", "n", "--cron", "@every 0s"], "--cron", ["1s or more"]),
]


@pytest.mark.parametrize(
    ("args", "option", "words"), BAD_INPUT, ids=lambda v: " ".join(v) if isinstance(v, list) else None
)
def test_bad_input_exits_2_with_one_clear_line_and_sends_nothing(capsys, kfp, args, option, words):
    root = [] if any(a.startswith("root=") for a in args) else ["--param", f"root={ROOT}"]
    code, out, err = cli(capsys, *args, "--endpoint", kfp.url, *root)
    assert code == 2
    [message] = err.strip().splitlines()
    named = " ".join(args[:2]) if args[0] == "schedule" else args[0]  # `schedule create`: with its action
    assert message.startswith(f"trainboard {named}: error: {option}: "), message
    for word in words:
        assert word in message
    assert out == ""
    assert kfp.requests == [], "nothing may be sent before the input is checked"


def test_a_bucket_folder_and_a_tfds_dataset_are_sent(capsys, kfp):
    for dataset in ("folder:gs://team-bucket/images", "tfds:cifar10"):
        code, _, err = cli(capsys, "submit", "--endpoint", kfp.url, "--param", f"root={ROOT}",
                           "--param", f"dataset={dataset}")  # fmt: skip
        assert code == 0, err
        assert submitted_runs(kfp)[-1]["runtime_config"]["parameters"]["dataset"] == dataset


def test_without_tensorflow_datasets_a_tfds_name_is_sent_with_a_note(capsys, kfp, monkeypatch):
    """The light install (no train extra) cannot look the name up: it says so, and prepare-data checks."""
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "tensorflow_datasets" else find_spec(name, *a),
    )
    code, _, err = cli(capsys, "submit", "--endpoint", kfp.url, "--param", f"root={ROOT}",
                       "--param", "dataset=tfds:caltech10")  # fmt: skip
    assert code == 0, err
    assert "trainboard: note: tfds:caltech10 not checked here: TensorFlow Datasets is not installed" in err


def test_missing_root_and_missing_endpoint_are_named(capsys, kfp):
    code, _, err = cli(capsys, "submit", "--endpoint", kfp.url)
    assert code == 2 and "--param: missing required root" in err
    code, _, err = cli(capsys, "submit", "--param", f"root={ROOT}")
    assert (
        code == 2 and "--endpoint: no Kubeflow Pipelines endpoint" in err and "KF_PIPELINES_ENDPOINT" in err
    )
    assert kfp.requests == []


def test_unreachable_endpoint_is_named_at_once(capsys):
    endpoint = f"http://127.0.0.1:{free_port()}"
    code, out, err = cli(capsys, "submit", "--endpoint", endpoint, "--param", f"root={ROOT}")
    assert code == 2 and out == ""
    assert err.startswith(f"trainboard submit: error: --endpoint: cannot reach {endpoint}: ")


@pytest.mark.parametrize(
    ("token", "words"),
    [([], "needs a token"), (["--token", "wrong"], "refused the credentials (the token setting)")],
)
def test_401_names_the_token_and_creates_nothing(capsys, token, words):
    server = KFPServer(token="right")
    try:
        code, _, err = cli(capsys, "schedule", "create", "--endpoint", server.url, *token, "--name", "n",
                           "--cron", "0 0 3 * * *", "--param", f"root={ROOT}")  # fmt: skip
    finally:
        server.stop()
    assert code == 2
    assert err.startswith(f"trainboard schedule create: error: --token: {server.url} answered 401 "), err
    assert words in err and "KF_PIPELINES_TOKEN" in err
    assert [(r.method, r.path) for r in server.requests] == [("GET", f"{API}/healthz")]


def test_ctrl_c_while_waiting_stops_without_a_traceback(tmp_path):
    """Ctrl-C outside `trainboard local`'s run (here `submit --wait` on a run that never ends): exit 130,
    one line."""
    server = KFPServer(final_state="RUNNING")
    try:
        waiting = subprocess.Popen(
            [
                str(BIN / "trainboard"),
                "submit",
                "--endpoint",
                server.url,
                "--param",
                f"root={ROOT}",
                "--wait",
            ],
            cwd=tmp_path,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while not server.runs and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.runs, "the run was not submitted"
        waiting.send_signal(signal.SIGINT)
        _, err = waiting.communicate(timeout=60)
    finally:
        server.stop()
    assert waiting.returncode == 130, err
    assert err.splitlines()[-1] == "trainboard submit: interrupted"
    assert "Traceback" not in err


class Hung(Exception):
    """Not a TimeoutError: urllib3 would take that for a socket's timeout, and retry."""


def hung(signum: int, frame: object) -> None:
    raise Hung("trainboard submit still waits after 20 s")


def submit_within_20_s(capsys, server: KFPServer) -> tuple[int, str, str, float]:
    """`trainboard submit` to ``server``, stopped by SIGALRM if it hangs: exit code, out, err, seconds."""
    signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    started = time.monotonic()
    try:
        code, out, err = cli(capsys, "submit", "--endpoint", server.url, "--param", f"root={ROOT}")
    finally:
        signal.alarm(0)
        server.stop()
    return code, out, err, time.monotonic() - started


def test_a_server_that_answers_healthz_but_stalls_elsewhere_is_named_in_seconds(capsys, monkeypatch):
    """Every request has a deadline: the route that did not answer is named, exit 3 (as an API that stops
    answering), in seconds instead of hanging forever."""
    from trainboard.app.cluster import connection

    monkeypatch.setattr(connection, "REQUEST_SECONDS", 0.5, raising=False)
    server = KFPServer(delay=math.inf)
    code, out, err, seconds = submit_within_20_s(capsys, server)
    assert code == 3 and out == "", err
    [message] = err.strip().splitlines()
    assert message.startswith(
        f"trainboard submit: error: {server.url}: GET {API}/experiments did not answer "
    )
    assert "within 0.5 s" in message
    assert seconds < 10
    assert submitted_runs(server) == []


def test_the_requests_of_one_submit_have_a_bound_all_together(capsys, monkeypatch):
    """Each answer comes within its own deadline, but slowly: the sending stops at its bound, naming the
    request it did not send."""
    from trainboard.app.cluster import connection

    monkeypatch.setattr(connection, "REQUEST_SECONDS", 5, raising=False)
    monkeypatch.setattr(connection, "SEND_SECONDS", 1, raising=False)
    code, _, err, seconds = submit_within_20_s(capsys, server := KFPServer(delay=0.4))
    assert code == 3, err
    assert f"{server.url}: " in err and f" {API}/" in err and "1 s in all" in err
    assert seconds < 10
