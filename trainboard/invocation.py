"""The commands trainboard suggests (watch a run, resume it, fetch weights, roll back), written as this
program was started, so that each works pasted into a new shell.

`trainboard` alone only works where a shell finds this program by that name: after `make run` it is
`.venv/bin/trainboard`, and a new shell without the venv activated has no `trainboard` (or another one).
So when the program on PATH is not the running one, a suggested command starts with the running script's
absolute path. The tasks of `trainboard local` are other processes (kfp.local's executor): the CLI hands
them its name in the environment (ENV). Anywhere else (a cluster's pod, a test calling main()) the
command names `trainboard`, as a person who installed it types it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

ENV = "TRAINBOARD_PROGRAM"  # how `trainboard local` names itself to its tasks
NAME = "trainboard"


def program() -> str:
    """How to run this program from a new shell: `trainboard`, or the running script's absolute path."""
    if handed := os.environ.get(ENV):
        return handed
    script = sys.argv[0] if sys.argv else ""
    if Path(script).name != NAME or os.sep not in script:  # not the script, or found on PATH by its name
        return NAME
    on_path = shutil.which(NAME)
    try:
        if on_path and os.path.samefile(on_path, script):
            return NAME
    except OSError:  # a script that is gone: its path is still the best guess
        pass
    return shlex.quote(os.path.abspath(script))


def command(arguments: str) -> str:
    """``arguments`` (e.g. "tensorboard --logdir DIR", quoted by the caller) after the program's name."""
    return f"{program()} {arguments}"
