"""`--root`, declared once for every command that reads or writes a root (local, weights, champion, gc),
with the one default they share with `tensorboard --logdir` (DEFAULT_ROOT/tensorboard)."""

from __future__ import annotations

import argparse

from trainboard.errors import UsageError
from trainboard.roots import checked_uri

DEFAULT_ROOT = "trainboard-runs"  # a folder in the working directory: `trainboard local` makes it
ROOT_HELP = "the runs' root: a local folder or gs://BUCKET/PREFIX"


def add_root_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", default=DEFAULT_ROOT, help=f"{ROOT_HELP} (default: %(default)s)")


def no_root(root: str, consequence: str) -> UsageError:
    """A command that reads a root run where there is none: what it cannot do, and, for the default
    root, the two ways on (a first run makes it; --root names another)."""
    default = root == checked_uri(DEFAULT_ROOT, "root")  # ``root`` is checked: an absolute path
    hint = "; run `trainboard local` first (it makes it), or give --root" if default else ""
    return UsageError("root", f"{root} does not exist (or holds nothing): {consequence}{hint}")
