"""Issue 32's "done when", as a user meets it: a first `trainboard local` run, `trainboard serve` started as
a process and the curl line it prints run as printed (by a shell); a second run promoted, and the same
curl answers from it without a restart; `trainboard champion rollback` brings the first back, and the
curl answers from it again."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.cli import last_json_line, trainboard
from tests.support.serving import REPO, free_port, start_serve, stop

CURL = "/usr/bin/curl"  # the printed line names `curl`; a test that cannot run it says so, not passes
# Small and quick: the demo data at 32 px; what is checked is what serves, not how well it learnt.
SMALL_RUN = ("--no-serve", "--json", "--image-size", "32")


def run_curl(line: str) -> dict:
    """The printed curl line as a shell runs it; its JSON answer."""
    done = subprocess.run(["sh", "-c", line], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def answered_by(line: str, run: str, seconds: float = 60) -> dict:
    """The curl line's answer once it comes from ``run`` (a new champion is read within about a second)."""
    deadline = time.monotonic() + seconds
    while (answer := run_curl(line))["model_version"] != run:
        assert time.monotonic() < deadline, f"still answered by {answer['model_version']}, not {run}"
        time.sleep(0.5)
    return answer


@pytest.mark.slow
@pytest.mark.skipif(not Path(CURL).exists(), reason="no curl on this machine to run the printed line")
def test_the_printed_curl_answers_from_each_new_champion_and_after_a_rollback_without_a_restart(tmp_path):
    root = tmp_path / "root"
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout's trainboard, whatever is installed

    def local(run: str, *options: str) -> dict:
        done = trainboard(
            "local", *SMALL_RUN, "--root", str(root), "--run-name", run, *options, env=env, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return last_json_line(done.stdout)

    first = local("first", "--epochs", "3")  # above chance (0.25), which the gate asks of a first model
    assert first["champion"] == "first", first
    proc, printed = start_serve(str(root), free_port(), tmp_path / "serve.log")
    try:
        [curl] = [line.strip() for line in printed if line.strip().startswith("curl ")]
        answer = answered_by(curl, "first")
        [prediction] = answer["predictions"]
        assert prediction["classes"] == ["circle", "square", "triangle", "cross"]
        assert len(prediction["probabilities"]) == 4
        assert sum(prediction["probabilities"]) == pytest.approx(1, abs=1e-4)

        second = local("second", "--epochs", "8")  # better: promoted by the default rule
        assert second["champion"] == "second", second
        assert second["metrics"]["test_accuracy"] > first["metrics"]["test_accuracy"]
        from_second = answered_by(curl, "second")
        assert from_second["predictions"] != answer["predictions"]

        back = trainboard("champion", "rollback", "--root", str(root), "--to", "first", env=env)
        assert back.returncode == 0, back.stderr
        assert answered_by(curl, "first")["predictions"] == answer["predictions"]
        assert proc.poll() is None, "the same server process answered throughout"
    finally:
        stop(proc)
    log = (tmp_path / "serve.log").read_text()
    assert "now serving champion second" in log and "now serving champion first" in log
