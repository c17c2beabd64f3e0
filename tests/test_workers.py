"""Multi-worker training (issue 28): the `workers` parameter, its checks and what each worker is told."""

from __future__ import annotations

import pytest

from tests.support.cli import in_process
from tests.support.kfp_server import KFPServer

SCHEDULE = ["schedule", "--name", "n", "--cron", "0 0 3 * * *"]
BAD_WORKERS = [
    (["local", "--workers", "0"], "--workers: must be greater than 0, got 0"),
    (["local", "--workers", "two"], "--workers: invalid int value: 'two'"),
    (["local", "--workers", "1000"], "--workers: must be at most 64, got 1000"),
    (["local", "--workers", "3", "--batch-size", "32"], "batch_size 32 must be a multiple of workers 3"),
    (["submit", "--param", "workers=-2"], "--param: workers=-2: must be greater than 0, got -2"),
    (["submit", "--param", "workers=two"], "--param: workers='two' is not an integer"),
    ([*SCHEDULE, "--param", "workers=65"], "--param: workers=65: must be at most 64, got 65"),
]


@pytest.mark.parametrize(("command", "words"), BAD_WORKERS, ids=[" ".join(c[1:]) for c, _ in BAD_WORKERS])
def test_bad_worker_counts_exit_2_before_any_work(tmp_path, monkeypatch, capsys, command, words):
    monkeypatch.chdir(tmp_path)
    kfp = KFPServer()
    try:
        if command[0] == "local":
            command = [*command, "--no-serve", "--root", str(tmp_path / "root")]
        else:
            command = [*command, "--endpoint", kfp.url, "--param", "root=gs://team-bucket/trainboard"]
        code, out, err = in_process(capsys, *command)
    finally:
        kfp.stop()
    assert (code, out) == (2, "")
    [message] = err.strip().splitlines()[-1:]
    assert message.startswith(f"trainboard {command[0]}: error: ") and words in message, err
    assert kfp.requests == [] and list(tmp_path.iterdir()) == [], "nothing sent or written"
