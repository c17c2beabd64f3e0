"""A child process without root's power to read past permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH),
so that a test can make a folder unreadable even where the tests run as root."""

from __future__ import annotations

import ctypes
import os

_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def without_read_override() -> None:
    """A ``preexec_fn``: both capabilities dropped from the bounding set, so the program run next holds
    neither (root's programs get the bounding set). Nothing to drop for another user."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
