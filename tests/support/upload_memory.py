"""Peak memory of the trainer's upload side (DirectoryMirror) in a process of its own: an event file
written and mirrored, then appended to and mirrored again; for its test and bench/mirror_memory.py."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

# `python -c _UPLOAD LOCAL TARGET FIRST_MIB MORE_MIB`; prints "VmHWM N" (kB): ru_maxrss of a child would
# also count the parent it was forked from.
_UPLOAD = """
import re, sys
from pathlib import Path
from trainboard.storage import DirectoryMirror

local, target, first_mib, more_mib = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
event = local / "train" / "events.out.tfevents.1"
event.parent.mkdir(parents=True)

def grow(mib):
    with event.open("ab") as f:
        for i in range(mib):
            f.write(bytes([i % 251]) * 2**20)

mirror = DirectoryMirror(local, target)
grow(first_mib)
mirror.sync()
grow(more_mib)
mirror.sync()
print("VmHWM", re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
"""


def upload_peak_rss(local: Path, target: str, first_mib: int, more_mib: int, env: dict[str, str]) -> int:
    """Peak RSS in bytes of a DirectoryMirror of ``local`` to ``target`` mirroring an event file of
    ``first_mib`` MiB, then the ``more_mib`` MiB appended to it."""
    proc = subprocess.run(
        [sys.executable, "-c", _UPLOAD, str(local), target, str(first_mib), str(more_mib)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(re.search(r"VmHWM (\d+)", proc.stdout).group(1)) * 1024
