"""`--root`, declared once for every command that reads or writes a root (local, weights, champion, gc)."""

from __future__ import annotations

import argparse

ROOT_HELP = "the runs' root: a local folder or gs://BUCKET/PREFIX"


def add_root_option(p: argparse.ArgumentParser, default: str | None = None) -> None:
    """Required unless the command has a ``default`` (local's, a folder in the working directory)."""
    if default is None:
        p.add_argument("--root", required=True, help=ROOT_HELP)
    else:
        p.add_argument("--root", default=default, help=f"{ROOT_HELP} (default: %(default)s)")
