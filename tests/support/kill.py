"""Killing a real process at one of trainboard.faults' pause points, as a crash would."""

from __future__ import annotations

import signal
import subprocess


def kill_at_pause(proc: subprocess.Popen, point: str) -> None:
    """Read ``proc``'s stderr (a text pipe) until it says it paused at ``point`` (POINT[:N]), then SIGKILL
    it; AssertionError when it exits first."""
    try:
        for line in proc.stderr:
            if f"fault pause at {point.split(':')[0]}" in line:
                break
        else:
            raise AssertionError(f"{proc.args[0]} exited ({proc.wait()}) before pausing at {point}")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
