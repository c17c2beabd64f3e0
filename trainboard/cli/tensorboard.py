"""`trainboard tensorboard`: TensorBoard over a root's runs, local or gs://; also what `local` ends with."""

from __future__ import annotations

import argparse
import contextlib

from trainboard import layout
from trainboard.cli.output import progress
from trainboard.config import check_root, root_exists
from trainboard.errors import UsageError

DEFAULT_ROOT = "trainboard-runs"  # `trainboard local`'s root, so `trainboard tensorboard` finds it as is
MAX_PORT = 65535


def add(commands) -> None:
    p = commands.add_parser(
        "tensorboard",
        help="serve TensorBoard over a root's runs (local folder or gs://)",
        description="Serve TensorBoard over ROOT/tensorboard: every run side by side, new runs and new "
        "epochs appear as they are written.",
    )
    p.add_argument(
        "--logdir",
        default=layout.tensorboard_root(DEFAULT_ROOT),
        help="ROOT/tensorboard, a local folder or gs://BUCKET/PREFIX/tensorboard (default: %(default)s)",
    )
    p.add_argument("--port", type=int, default=6006, help="port, or the next free one (default: %(default)s)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_port(args.port)
    try:
        logdir = check_root(args.logdir)
    except UsageError as e:
        raise UsageError("logdir", e.problem) from None
    if not root_exists(logdir, "logdir"):
        # TensorBoard would serve an empty board without a word: a mistyped path looks like "no runs yet".
        raise UsageError(
            "logdir",
            f"{logdir} does not exist; expected ROOT/tensorboard of a root that `trainboard local --root "
            "ROOT` or a pipeline run has written to (a run writes it when its training starts)",
        )
    serve(logdir, args.port, host=args.host)
    return 0


def check_port(port: int) -> None:
    if not 1 <= port <= MAX_PORT:
        raise UsageError("port", f"must be in 1-{MAX_PORT}, got {port}")


def serve(logdir: str, port: int, run: str = "", host: str = "127.0.0.1") -> None:
    """TensorBoard over ``logdir`` on ``port`` or the next free one, until Ctrl-C; with ``run``, also the
    link that shows that run only."""
    from trainboard.links import tensorboard_run_url
    from trainboard.tensorboard_server import free_port
    from trainboard.tensorboard_server import serve as serve_tensorboard

    port = free_port(port, host)
    url = f"http://{host}:{port}/"
    # Ctrl-C from the first line on is the way to stop it (a Ctrl-C right after the link is printed too).
    with contextlib.suppress(KeyboardInterrupt):
        progress(f"trainboard: TensorBoard over {logdir} at {url} (Ctrl-C to stop)")
        if run:
            progress(f"trainboard: this run only: {tensorboard_run_url(url, run)}")
        serve_tensorboard(logdir, port, host)
