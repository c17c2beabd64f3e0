"""The installed `trainboard` CLI in a subprocess, as a person runs it; or its main() in the test's process
(the pipeline compiles once per session there)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent  # the environment's scripts: trainboard, hadolint, ...
# Epochs of a demo run that the gate must promote as the first champion: one epoch lands at chance (test
# accuracy 0.244 on seed 0, below the 0.25 of four classes, so not promoted); three reach 0.38 and more.
PROMOTABLE_EPOCHS = "3"


def trainboard(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 600):
    """Run the installed `trainboard` CLI; returns the CompletedProcess (text)."""
    return subprocess.run(
        [str(BIN / "trainboard"), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )


def last_json_line(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def in_process(capsys, *args: str) -> tuple[int, str, str]:
    """trainboard.app.cli.main(args) in this process: exit code, stdout, stderr (``capsys``: pytest's)."""
    from trainboard.app.cli import main

    try:
        code = main(list(args))
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err
