"""What real Kubeflow Pipelines backends need, encoded against the loopback v2beta1 server (which only
answers as the real API server's routes do: it cannot run the pipeline): the release check on healthz,
multi-user namespaces, kfp.Client's ways to authenticate, idempotent schedules and their management,
cron as robfig/cron v1.2.0 reads it, and `--wait` that ends in distinct exit codes."""

from __future__ import annotations

import base64
import json
import threading

import pytest

from tests.support.cli import in_process as cli
from tests.support.kfp_server import API, KFPServer, clean_environment  # noqa: F401 (autouse)
from trainboard.app.cluster.cron import check_cron
from trainboard.errors import UsageError

ROOT = "gs://team-bucket/trainboard"
NIGHTLY = ["--name", "nightly", "--cron", "0 0 3 * * *", "--param", f"root={ROOT}"]


def created(server: KFPServer) -> list[str]:
    return [r.path for r in server.requests if r.method in ("POST", "DELETE")]


# --- supported releases ------------------------------------------------------------------------------------


@pytest.mark.parametrize("release", ["2.5.0", "2.4.1", "2.0.5", "1.8.5"])
def test_a_server_below_the_minimum_release_is_refused_naming_both(capsys, release):
    server = KFPServer(release=release)
    try:
        code, out, err = cli(capsys, "submit", "--endpoint", server.url, "--param", f"root={ROOT}")
    finally:
        server.stop()
    assert code == 2 and out == ""
    assert f"runs Kubeflow Pipelines {release}; trainboard needs 2.14.0 or later" in err
    assert "tolerationJson" in err and "pipeline_job_uuid" in err and "dsl.Collected" in err
    assert created(server) == []


@pytest.mark.parametrize("release", ["unknown", "", "dev"])
def test_a_server_without_a_release_needs_skip_version_check(capsys, release):
    server = KFPServer(release=release)
    try:
        code, _, err = cli(capsys, "submit", "--endpoint", server.url, "--param", f"root={ROOT}")
        assert code == 2 and "pass --skip-version-check" in err and created(server) == []
        code, _, err = cli(
            capsys, "submit", "--endpoint", server.url, "--skip-version-check", "--param", f"root={ROOT}"
        )
    finally:
        server.stop()
    assert code == 0, err
    assert created(server) == [f"{API}/experiments", f"{API}/runs"]


@pytest.mark.parametrize("release", ["2.14.0", "v2.14.3", "2.17.0-rc.1"])
def test_supported_releases_are_accepted(capsys, release):
    server = KFPServer(release=release)
    try:
        code, _, err = cli(capsys, "schedule", "create", "--endpoint", server.url, *NIGHTLY)
    finally:
        server.stop()
    assert code == 0, err


# --- multi-user Kubeflow and authentication ----------------------------------------------------------------


def test_multi_user_needs_a_namespace_and_creates_the_experiment_in_it(capsys, monkeypatch, tmp_path):
    server = KFPServer(multi_user=True)
    try:
        code, out, err = cli(capsys, "submit", "--endpoint", server.url, "--param", f"root={ROOT}")
        assert code == 2 and out == "" and created(server) == []
        assert "multi-user Kubeflow" in err and "--namespace NS" in err and "TRAINBOARD_NAMESPACE" in err
        code, _, err = cli(capsys, "submit", "--endpoint", server.url, "--namespace", "team-vision",
                           "--param", f"root={ROOT}")  # fmt: skip
        assert code == 0, err
        monkeypatch.setenv("TRAINBOARD_NAMESPACE", "team-env")
        code, _, err = cli(
            capsys, "schedule", "create", "--endpoint", server.url, "--experiment", "e2", *NIGHTLY
        )
        assert code == 0, err
        monkeypatch.delenv("TRAINBOARD_NAMESPACE")
        context = tmp_path / "home" / ".config" / "kfp" / "context.json"  # what `kfp` saves
        context.parent.mkdir(parents=True)
        context.write_text(json.dumps({"namespace": "team-kfp"}))
        code, _, err = cli(capsys, "submit", "--endpoint", server.url, "--experiment", "e3",
                           "--param", f"root={ROOT}")  # fmt: skip
        assert code == 0, err
    finally:
        server.stop()
    experiments = server.bodies("POST", "/experiments")
    assert [(e["display_name"], e.get("namespace")) for e in experiments] == [
        ("trainboard", "team-vision"),
        ("e2", "team-env"),
        ("e3", "team-kfp"),
    ]
    listed = [
        r.query.get("namespace")
        for r in server.requests
        if r.path == f"{API}/experiments" and r.method == "GET"
    ]
    assert listed == ["team-vision", "team-env", "team-kfp"], (
        "the experiment is looked up in the namespace too"
    )


def test_the_service_account_token_and_kfps_saved_session_authenticate_every_request(
    capsys, monkeypatch, tmp_path
):
    server = KFPServer(token="from-the-volume")
    token_file = tmp_path / "token"
    token_file.write_text("from-the-volume\n")
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(token_file))
    try:
        code, _, err = cli(capsys, "submit", "--endpoint", server.url, "--param", f"root={ROOT}")
        assert code == 0, err
        assert {r.headers.get("authorization") for r in server.requests} == {"Bearer from-the-volume"}
        token_file.unlink()
        context = tmp_path / "home" / ".config" / "kfp" / "context.json"
        context.parent.mkdir(parents=True)
        context.write_text(json.dumps({"client_authentication_cookie": "authservice_session=abc"}))
        server.requests.clear()
        server.token = ""
        code, _, err = cli(capsys, "submit", "--endpoint", server.url, "--param", f"root={ROOT}")
    finally:
        server.stop()
    assert code == 0, err
    assert {r.headers.get("cookie") for r in server.requests} == {"authservice_session=abc"}
    assert "healthz" in server.requests[0].path, "the health check carries the same credentials"


def test_exposed_credentials_are_warned_about_and_never_echoed(capsys, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('endpoint = "http://kfp.invalid:8888"\ntoken = "t0ken"\n')
    config.chmod(0o644)
    code, out, err = cli(capsys, "submit", "--config", str(config), "--param", f"root={ROOT}")
    assert code == 2 and out == ""
    assert "over plain http://" in err and f"chmod 600 {config}" in err
    assert "cannot reach http://kfp.invalid:8888" in err
    assert "t0ken" not in err

    config.chmod(0o600)
    server = KFPServer()
    try:
        config.write_text(f'endpoint = "{server.url}"\ntoken = "t0ken"\n')
        code, out, err = cli(capsys, "submit", "--config", str(config), "--param", f"root={ROOT}")
    finally:
        server.stop()
    assert code == 0 and "warning" not in err, "a loopback endpoint and a private file: nothing to warn of"


def test_credentials_in_the_endpoint_url_are_sent_as_basic_auth_and_never_shown(capsys):
    """https://USER:PASSWORD@HOST: every request (kfp.Client's own health check in its constructor
    included) carries them as basic auth; no message or link shows them, whatever happens."""
    server = KFPServer(basic="alice:s3cr@t:x")
    endpoint = server.url.replace("http://", "http://alice:s3cr%40t%3Ax@")
    said: list[str] = []

    def trainboard(*args: str, at: str = endpoint) -> int:
        code, out, err = cli(capsys, *args, "--endpoint", at)
        said.append(out + err)
        return code

    try:
        assert trainboard("submit", "--param", f"root={ROOT}", "--wait") == 0, said[-1]
        assert f"KFP run:     {server.url}/#/runs/details/run-1" in said[-1]
        assert trainboard("schedule", "create", *NIGHTLY) == 0, said[-1]
        assert trainboard("schedule", "list") == 0 and "nightly" in said[-1]
        assert {r.headers.get("authorization") for r in server.requests} == {
            "Basic " + base64.b64encode(b"alice:s3cr@t:x").decode()
        }
        wrong = endpoint.replace("alice", "bob")
        assert trainboard("schedule", "pause", "nightly", at=wrong) == 2
        assert (
            "--endpoint: " in said[-1]
            and "refused the credentials (the endpoint URL's user and pass" in said[-1]
        )
        server.refusal = "Invalid input error: no such service account"
        assert trainboard("submit", "--param", f"root={ROOT}") == 1
        server.refusal, server.wrong = "", {("POST", "/runs"): b"\xff"}
        assert trainboard("submit", "--param", f"root={ROOT}") == 3
        assert trainboard("submit", "--param", f"root={ROOT}", "--token", "t0ken") == 2
        assert "carries a user and password (basic auth) and a token is set too; keep one" in said[-1]
    finally:
        server.stop()
    assert trainboard("submit", "--param", f"root={ROOT}") == 2 and "cannot reach" in said[-1]
    shown = "".join(said)
    for secret in ("alice", "s3cr", "%40", "bob"):
        assert secret not in shown, shown


# --- schedules ---------------------------------------------------------------------------------------------


def test_an_existing_schedule_is_refused_showing_both_or_replaced_after_the_new_one_exists(capsys, kfp):
    code, _, err = cli(capsys, "schedule", "create", "--endpoint", kfp.url, *NIGHTLY)
    assert code == 0, err
    [first] = kfp.recurring_runs
    before = len(kfp.requests)
    code, out, err = cli(
        capsys, "schedule", "create", "--endpoint", kfp.url, *NIGHTLY, "--param", "epochs=30"
    )
    assert code == 2 and out == ""
    assert "error: --name: schedule nightly exists in experiment trainboard: cron '0 0 3 * * *'" in err
    assert '"epochs": 30' in err and "--replace" in err
    assert [
        r for r in kfp.requests[before:] if r.method in ("POST", "DELETE") and "recurringruns" in r.path
    ] == []

    code, _, err = cli(
        capsys, "schedule", "create", "--endpoint", kfp.url, *NIGHTLY, "--param", "epochs=30", "--replace"
    )
    assert code == 0, err
    [second] = kfp.recurring_runs
    assert second != first and kfp.recurring_runs[second]["runtime_config"]["parameters"]["epochs"] == 30
    changes = [
        (r.method, r.path)
        for r in kfp.requests
        if r.method in ("POST", "DELETE") and "recurringruns" in r.path
    ]
    assert changes[-2:] == [("POST", f"{API}/recurringruns"), ("DELETE", f"{API}/recurringruns/{first}")], (
        "the old one is deleted only after the new one exists"
    )


def test_the_same_schedule_command_again_changes_nothing(capsys, kfp):
    """Identical (cron, parameters, max concurrency, catch-up, pipeline): exit 0, nothing created or
    deleted; any one of them different still needs --replace."""
    nightly = ["schedule", "create", "--endpoint", kfp.url, *NIGHTLY, "--param", "epochs=20"]
    code, _, err = cli(capsys, *nightly)
    assert code == 0, err
    [first] = kfp.recurring_runs
    before = len(created(kfp))
    code, out, err = cli(capsys, *nightly)
    assert code == 0, err
    assert "trainboard: schedule nightly already scheduled, unchanged: cron '0 0 3 * * *'" in out
    assert f"/#/recurringrun/details/{first}" in out
    assert created(kfp)[before:] == [], "nothing created or deleted"

    assert cli(capsys, "schedule", "pause", "nightly", "--endpoint", kfp.url)[0] == 0
    code, out, _ = cli(capsys, *nightly)
    assert code == 0 and "unchanged, and disabled (trainboard schedule resume nightly)" in out

    before = len(created(kfp))
    base = ["schedule", "create", "--endpoint", kfp.url, "--name", "nightly", "--param", f"root={ROOT}"]
    for different in (
        ["--cron", "0 0 3 * * *", "--param", "epochs=20", "--max-concurrency", "2"],
        ["--cron", "0 0 3 * * *", "--param", "epochs=20", "--catchup"],
        ["--cron", "0 0 3 * * *", "--param", "epochs=21"],
        ["--cron", "0 0 4 * * *", "--param", "epochs=20"],
    ):
        code, _, err = cli(capsys, *base, *different)
        assert code == 2 and "--name: schedule nightly exists" in err and "--replace" in err, different
    assert created(kfp)[before:] == []
    assert list(kfp.recurring_runs) == [first]


def test_a_changed_pipeline_is_not_the_same_schedule(capsys, kfp, monkeypatch):
    code, _, err = cli(capsys, "schedule", "create", "--endpoint", kfp.url, *NIGHTLY)
    assert code == 0, err
    [first] = kfp.recurring_runs
    kfp.recurring_runs[first]["pipeline_spec"]["pipeline_spec"]["pipelineInfo"]["name"] = "older"
    code, _, err = cli(capsys, "schedule", "create", "--endpoint", kfp.url, *NIGHTLY)
    assert code == 2 and "--name: schedule nightly exists" in err


@pytest.mark.parametrize(
    "name", ["", "   ", " nightly", "nightly ", "night\tly", "nightly\n", "\u202enightly", "night\u200fly"]
)
def test_schedule_names_that_read_as_another_are_refused(capsys, kfp, name):
    code, out, err = cli(capsys, "schedule", "create", "--endpoint", kfp.url, "--name", name, *NIGHTLY[2:])
    assert code == 2 and out == ""
    [message] = err.strip().splitlines()
    assert message.startswith("trainboard schedule create: error: --name: "), message
    assert kfp.requests == []


def test_schedules_are_listed_paused_resumed_and_deleted_by_name(capsys, kfp):
    for name in ("nightly", "weekly"):
        code, _, err = cli(capsys, "schedule", "create", "--endpoint", kfp.url, *NIGHTLY[:0], "--name", name,
                           "--cron", "@daily", "--param", f"root={ROOT}")  # fmt: skip
        assert code == 0, err
    code, out, _ = cli(capsys, "schedule", "list", "--endpoint", kfp.url)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "CRON", "ID"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["nightly", "ENABLED", "@daily"],
        ["weekly", "ENABLED", "@daily"],
    ]
    code, out, _ = cli(capsys, "schedule", "list", "--endpoint", kfp.url, "--json")
    listed = [json.loads(line) for line in out.splitlines()]  # the same schedules, every field
    assert code == 0 and [(s["name"], s["status"], s["cron"]) for s in listed] == [
        ("nightly", "ENABLED", "@daily"),
        ("weekly", "ENABLED", "@daily"),
    ]
    assert [s["recurring_run_id"] for s in listed] == [line.split()[3] for line in lines[1:]]
    assert listed[0]["parameters"]["root"] == ROOT

    [nightly] = [i for i, r in kfp.recurring_runs.items() if r["display_name"] == "nightly"]
    assert cli(capsys, "schedule", "pause", "nightly", "--endpoint", kfp.url)[0] == 0
    assert kfp.recurring_runs[nightly]["status"] == "DISABLED"
    assert cli(capsys, "schedule", "resume", "nightly", "--endpoint", kfp.url)[0] == 0
    assert kfp.recurring_runs[nightly]["status"] == "ENABLED"
    code, out, _ = cli(capsys, "schedule", "delete", "nightly", "--endpoint", kfp.url)
    assert code == 0 and f"schedule nightly ({nightly}) deleted" in out
    assert [r["display_name"] for r in kfp.recurring_runs.values()] == ["weekly"]

    code, out, err = cli(capsys, "schedule", "pause", "nightly", "--endpoint", kfp.url)
    assert code == 2 and out == ""
    assert err == (
        "trainboard schedule pause: error: NAME: no schedule 'nightly' in experiment trainboard; "
        "it has: weekly\n"
    )


NOTICE = "trainboard: warning: `trainboard {}` is now `trainboard {}`; the old spelling is refused from the "
OLD_CREATE = NOTICE.format("schedule --name ...", "schedule create --name ...")
OLD_MANAGE = NOTICE.format("schedules ACTION", "schedule ACTION")


def test_the_old_spellings_still_run_this_release_after_a_notice_naming_the_new(capsys, kfp):
    """A crontab or CI job written for `schedule --name ...` and `schedules ACTION` keeps working (the same
    exit code and stdout), with one line on stderr naming what to write instead."""
    code, out, err = cli(capsys, "schedule", "--endpoint", kfp.url, *NIGHTLY)
    assert code == 0 and out.startswith("trainboard: schedule nightly enabled: cron '0 0 3 * * *'"), err
    assert err.startswith(OLD_CREATE) and len(err.splitlines()) == 1, err
    [nightly] = kfp.recurring_runs

    new = cli(capsys, "schedule", "list", "--endpoint", kfp.url)
    code, out, err = cli(capsys, "schedules", "list", "--endpoint", kfp.url)
    assert (code, out) == new[:2] and "nightly" in out
    assert err.startswith(OLD_MANAGE) and len(err.splitlines()) == 1, err
    code, out, err = cli(capsys, "schedules", "pause", "nightly", "--endpoint", kfp.url)
    assert (
        code == 0
        and out == f"trainboard: schedule nightly ({nightly}) paused\n"
        and err.startswith(OLD_MANAGE)
    )
    assert kfp.recurring_runs[nightly]["status"] == "DISABLED"

    # A mistake in the old spelling: the notice, then the one-line refusal naming the new spelling, exit 2.
    code, out, err = cli(capsys, "schedule", "--endpoint", kfp.url, "--name", "n", "--cron", "0 3 * * *")
    assert (code, out) == (2, "")
    notice, error = err.splitlines()
    assert notice.startswith(OLD_CREATE) and error.startswith("trainboard schedule create: error: --cron: ")


@pytest.mark.parametrize(
    "expression",
    [
        "0 0 3 * * *",
        "0 30 2 * * MON-FRI",
        "0 0 3 ? * SUN",
        "@daily",
        "@midnight",
        "@hourly",
        "@every 1h30m",
        "@every 15m",  # MIN_INTERVAL_SECONDS
        "@every 8784h",  # MAX_EVERY_SECONDS: 366 days
        "0 */15 * * * *",
        "0 0 */2 * * *",
        "0 59 23,0 * * *",  # 00:59 and 23:59: an hour apart across midnight
        "0 50,5 23,0 1 * *",  # 23:50 on the 1st, then 00:05 on the 1st of the next month
        "0 0 3 29 2 *",  # February 29: leap years
        "0 0 3 31 2 MON",  # day-of-month or day-of-week when both are set: every Monday in February
        "0 0 3 31 1-3 *",
    ],
)
def test_cron_takes_what_robfig_cron_v1_2_0_parses(expression):
    assert check_cron(expression) == expression


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("0 3 * * *", ["KFP reads them as second minute hour", "write '0 0 3 * * *'"]),
        ("@nightly", ["not a descriptor", "@daily"]),
        ("@every", ["@every DURATION"]),
        ("@every 1d", ["@every DURATION"]),  # Go durations stop at hours
        ("0 0 3 * * * *", ["has 7 fields"]),
        ("0 0 3 31 2 *", ["never runs", "no month in '2' has a day '31'"]),
        ("0 0 3 30 FEB ?", ["never runs"]),
        ("0 0 3 31 4,6,9,11 *", ["never runs"]),
        ("@every 0s", ["1s or more"]),
        ("@every 0", ["1s or more"]),
        ("@every -1h", ["1s or more"]),
        ("@every 500ms", ["1s or more"]),  # robfig/cron's Every: anything under 1s runs every second
        # back to back: firings closer than MIN_INTERVAL_SECONDS (15 min)
        ("@every 1s", ["starts runs 1 s apart", "under the 15 min"]),
        ("@every 14m59s", ["starts runs 14 min 59 s apart"]),
        ("* * * * * *", ["starts runs 1 s apart (00:00:00 and 00:00:01 UTC)"]),
        ("0 */5 * * * *", ["starts runs 5 min apart", "'0 */15 * * * *' or @hourly"]),
        ("0 0,10 3 * * *", ["starts runs 10 min apart (03:00:00 and 03:10:00 UTC)"]),
        ("0 59,0 23,0 * * *", ["starts runs 1 min apart (23:59:00 and 00:00:00 UTC)"]),  # across midnight
        # never in the life of a deployment
        ("@every 8785h", ["may never fire", "at most 8784h (366 days)", "@yearly"]),
        ("@every 87600h", ["an interval of 3650 days may never fire"]),
        # a step past its field's range: one value, not the interval it reads as
        ("0 */90 * * * *", ["minute '*/90'", "minute 0 alone", "*/90 in minutes is hourly"]),
        ("0 */60 * * * *", ["minute 0 alone"]),
        ("0 5/90 * * * *", ["minute 5 alone"]),
        ("0 0 */30 * * *", ["hour 0 alone"]),
        ("0 0 3 */40 * *", ["day-of-month 1 alone"]),
        ("0 0 3 * */13 *", ["month 1 alone"]),
        ("0 0 3 * * MON/7", ["day-of-week 1 alone"]),
    ],
)
def test_cron_refuses_what_it_does_not_parse_or_would_misread(expression, words):
    with pytest.raises(UsageError) as error:
        check_cron(expression)
    for word in words:
        assert word in error.value.problem


# --- waiting -----------------------------------------------------------------------------------------------


def test_wait_gives_up_at_the_timeout_with_its_own_exit_code(capsys):
    server = KFPServer(final_state="RUNNING")
    try:
        code, _, err = cli(capsys, "submit", "--endpoint", server.url, "--param", f"root={ROOT}",
                           "--wait", "--timeout", "0.5")  # fmt: skip
    finally:
        server.stop()
    assert code == 4 and "still RUNNING after 0.5 s; it goes on" in err


def test_wait_on_an_api_that_stops_answering_has_its_own_exit_code(capsys, monkeypatch):
    from trainboard.app.cluster import runs

    server = KFPServer(final_state="RUNNING")
    monkeypatch.setattr(runs, "WAIT_POLL_SECONDS", 0.05)
    answer = server.answer

    def answer_then_go_away(request):  # the API goes away once the run is running (a restart, the network)
        if request.method == "GET" and "/runs/" in request.path:
            threading.Thread(target=server.stop, daemon=True).start()
        return answer(request)

    monkeypatch.setattr(server, "answer", answer_then_go_away)
    code, _, err = cli(capsys, "submit", "--endpoint", server.url, "--param", f"root={ROOT}", "--wait")
    assert code == 3, err
    assert f"lost {server.url}" in err
