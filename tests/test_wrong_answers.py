"""A Kubeflow Pipelines API that answers wrongly (bytes that are not UTF-8, text that is not JSON, JSON of
another shape, a run or a schedule without its id) is named, route and all, in one line, exit 3, for
`submit`, every `schedule` action and the old `schedules` spelling alike; never a traceback, never exit 0
with a link to `.../details/None`. A health check that answers wrongly is the endpoint setting refused,
exit 2, before anything is sent. The loopback server answers wrongly on the routes it is told to."""

from __future__ import annotations

import pytest

from tests.support.cli import in_process as cli
from tests.support.kfp_server import API, KFPServer, clean_environment  # noqa: F401 (autouse)

ROOT = "gs://team-bucket/trainboard"
NIGHTLY = ["--name", "nightly", "--cron", "0 0 3 * * *", "--param", f"root={ROOT}"]
NOT_KFP = ": not an answer of the Kubeflow Pipelines API"
# What a wrong answer can be, each with what the message says of it.
NOT_UTF8 = (b"\xff\xfe\x00{\x1b[31m", "answered bytes that are not UTF-8 text")
LOGIN_PAGE = (b"<html><body>Sign in</body></html>", "answered text that is not JSON")
A_LIST = ([{"run_id": "run-1"}], "answered a JSON list where an object belongs")


def with_nightly(server: KFPServer) -> KFPServer:
    """``server`` with the experiment `trainboard` and its schedule `nightly` (recurring-1) in it."""
    server.experiments["exp-1"] = {"experiment_id": "exp-1", "display_name": "trainboard"}
    server.recurring_runs["recurring-1"] = {
        "recurring_run_id": "recurring-1",
        "display_name": "nightly",
        "experiment_id": "exp-1",
        "status": "ENABLED",
        "trigger": {"cron_schedule": {"cron": "0 0 3 * * *"}},
    }
    return server


RECURRING = {"recurring_run_id": "recurring-1", "display_name": "nightly", "experiment_id": "exp-1"}
CASES = [
    # (id, command, the route that answers wrongly, its answer, what the message says)
    ("submit-run-not-utf8", ["submit"], ("POST", "/runs"), *NOT_UTF8),
    ("submit-run-login-page", ["submit"], ("POST", "/runs"), *LOGIN_PAGE),
    ("submit-run-a-list", ["submit"], ("POST", "/runs"), *A_LIST),
    ("submit-run-without-id", ["submit"], ("POST", "/runs"), {"display_name": "x"}, "with no run_id"),
    ("submit-run-empty-id", ["submit"], ("POST", "/runs"), {"run_id": " "}, "with no run_id"),
    (
        "submit-run-id-an-object",
        ["submit"],
        ("POST", "/runs"),
        {"run_id": {"id": "run-1"}},
        "`run_id` is an object, not a str",
    ),
    ("submit-experiment-not-utf8", ["submit"], ("POST", "/experiments"), *NOT_UTF8),
    ("submit-experiment-without-id", ["submit"], ("POST", "/experiments"), {}, "with no experiment_id"),
    (
        "submit-experiments-a-string",
        ["submit"],
        ("GET", "/experiments"),
        {"experiments": "trainboard"},
        "`experiments` is a string, not a list",
    ),
    (
        "submit-wait-no-state",
        ["submit", "--wait"],
        ("GET", "/runs/run-1"),
        {"run_id": "run-1"},
        "with no state",
    ),
    ("schedule-create-not-utf8", ["schedule", "create", *NIGHTLY], ("POST", "/recurringruns"), *NOT_UTF8),
    (
        "schedule-create-without-id",
        ["schedule", "create", *NIGHTLY],
        ("POST", "/recurringruns"),
        {"display_name": "nightly"},
        "with no recurring_run_id",
    ),
    ("schedule-list-login-page", ["schedule", "list"], ("GET", "/recurringruns"), *LOGIN_PAGE),
    (
        "schedule-list-run-without-id",
        ["schedule", "list"],
        ("GET", "/recurringruns"),
        {"recurringRuns": [{"display_name": "nightly"}]},
        "with no recurring_run_id",
    ),
    (
        "schedule-list-runs-an-object",
        ["schedule", "list"],
        ("GET", "/recurringruns"),
        {"recurringRuns": {"nightly": RECURRING}},
        "`recurringRuns` is an object, not a list",
    ),
    (
        "schedule-list-page-token-loops",
        ["schedule", "list"],
        ("GET", "/recurringruns"),
        {"recurringRuns": [RECURRING], "next_page_token": "again"},
        "answered the page token 'again' twice",
    ),
    (
        "schedule-pause-not-utf8",
        ["schedule", "pause", "nightly"],
        ("POST", "/recurringruns/recurring-1:disable"),
        *NOT_UTF8,
    ),
    (
        "schedule-resume-a-list",
        ["schedule", "resume", "nightly"],
        ("POST", "/recurringruns/recurring-1:enable"),
        *A_LIST,
    ),
    (
        "schedule-delete-login-page",
        ["schedule", "delete", "nightly"],
        ("DELETE", "/recurringruns/recurring-1"),
        *LOGIN_PAGE,
    ),
    ("schedules-list-not-utf8", ["schedules", "list"], ("GET", "/recurringruns"), *NOT_UTF8),
    (
        "schedules-delete-a-list",
        ["schedules", "delete", "nightly"],
        ("DELETE", "/recurringruns/recurring-1"),
        *A_LIST,
    ),
]


@pytest.mark.parametrize(
    ("command", "route", "answer", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_wrong_answer_is_named_in_one_line_exit_3_never_a_success(capsys, command, route, answer, words):
    server = KFPServer(wrong={route: answer})
    if command[0] != "submit" and command[1] != "create":
        with_nightly(server)
    extra = ["--param", f"root={ROOT}"] if command[0] == "submit" else []
    try:
        code, out, err = cli(capsys, *command, "--endpoint", server.url, *extra)
    finally:
        server.stop()
    message = err.strip().splitlines()[-1]  # `schedules` says its new spelling first
    action = " ".join(command[:2]).replace("schedules", "schedule") if command[0] != "submit" else "submit"
    assert code == 3, err
    assert message.startswith(f"trainboard {action}: error: {server.url}: "), message
    assert words in message, message
    if "twice" not in words:
        assert f"{route[0]} {API}{route[1]} answered" in message and NOT_KFP in message, message
    assert "Traceback" not in err and "\x1b" not in err + out, "the answer itself is never printed"
    assert "details/None" not in out
    assert out == "" or "--wait" in command, "no success printed (--wait: the run was submitted, then polled)"
    if route[0] != "GET":
        assert message.endswith("it may have taken effect: look in the KFP UI first")


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (b"\xff\xfe", "answered bytes that are not UTF-8 text"),
        ([{"tag_name": "2.14.3"}], "answered a JSON list where an object belongs"),
        ("2.14.3", "answered a JSON string where an object belongs"),
        ({"tag_name": 2.14}, "tag_name is not a string or multi_user not true or false"),
        ({"tag_name": "2.14.3", "multi_user": "false"}, "tag_name is not a string or multi_user not true"),
    ],
    ids=["not-utf8", "a-list", "a-string", "release-a-number", "multi-user-a-string"],
)
def test_a_health_check_that_answers_wrongly_refuses_the_endpoint_before_anything_is_sent(
    capsys, answer, words
):
    server = KFPServer(wrong={("GET", "/healthz"): answer})
    try:
        code, out, err = cli(capsys, "schedule", "create", "--endpoint", server.url, *NIGHTLY)
    finally:
        server.stop()
    assert (code, out) == (2, "")
    [message] = err.strip().splitlines()
    assert message.startswith(f"trainboard schedule create: error: --endpoint: {server.url}{API}/healthz ")
    assert words in message and "not the KFP API's health" in message
    assert [r.path for r in server.requests] == [f"{API}/healthz"], "nothing sent after it"
