"""`trainboard tensorboard`: TensorBoard over a root's runs, local or gs://; also what `local` ends with."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import socket
import sys
import tempfile
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from trainboard import layout
from trainboard.app.cli.output import failed_with_log, progress
from trainboard.app.cli.root_option import DEFAULT_ROOT  # ROOT/tensorboard: where `local` writes
from trainboard.errors import UsageError
from trainboard.invocation import command
from trainboard.roots import check_root, root_exists

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
    p.add_argument(
        "--verbose",
        action="store_true",
        help="show TensorBoard's own output here (default: in a log file, shown only if it fails)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_port(args.port)
    check_host(args.host)
    try:
        logdir = check_root(args.logdir)
    except UsageError as e:
        raise UsageError("logdir", e.problem) from None
    try:
        exists = root_exists(logdir, "logdir")
    except PermissionError as e:  # an empty board would not say why
        raise UsageError(
            "logdir",
            f"cannot be read: {e}; expected a folder this user may read, or a gs:// prefix these "
            "credentials may list (roles/storage.objectViewer)",
        ) from None
    if not exists:
        # TensorBoard would serve an empty board without a word: a mistyped path looks like "no runs yet".
        raise UsageError(
            "logdir",
            f"{logdir} does not exist; expected ROOT/tensorboard of a root that "
            f"`{command('local --root ROOT')}` or a pipeline run has written to (a run writes it when its "
            "training starts)",
        )
    # One per user: /tmp is shared, and another user's file cannot be replaced.
    log = (
        None
        if args.verbose
        else Path(tempfile.gettempdir()) / f"trainboard-tensorboard-{getpass.getuser()}.log"
    )
    if log is not None:
        log.unlink(missing_ok=True)  # the last start's output only (one still serving keeps its own file)
    return serve("tensorboard", logdir, args.port, host=args.host, log=log)


def check_port(port: int) -> None:
    if not 1 <= port <= MAX_PORT:
        raise UsageError("port", f"must be in 1-{MAX_PORT}, got {port}")


def check_host(host: str) -> None:
    """``host`` is an address this machine can listen on: TensorBoard would find out only once started."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind(address)
    except (OSError, UnicodeError) as e:  # unknown name, not this machine's; a label too long for IDNA
        reason = getattr(e, "strerror", None) or e
        raise UsageError(
            "host",
            f"cannot listen on {host!r} ({reason}); expected an address of this machine, e.g. "
            "127.0.0.1 or 0.0.0.0",
        ) from None


def serve(
    command: str,
    logdir: str,
    port: int,
    *,
    run: str = "",
    host: str = "127.0.0.1",
    log: Path | None = None,
    champion: str = "",
    trials: tuple[str, ...] = (),
) -> int:
    """TensorBoard over ``logdir`` on ``port`` or the next free one, until Ctrl-C; with ``run``, also the
    links that show it (its sweep's ``trials``, when it had one) beside the ``champion``'s run (when another
    run is the champion) and alone. Each
    link opens on the curves (links.CURVES), and a line says where the images are.
    TensorBoard's own output goes to ``log`` (None: here). The exit code: 0 when stopped by Ctrl-C, 1 when
    TensorBoard failed (said as ``command``'s error)."""
    from trainboard.board.tensorboard_server import free_port
    from trainboard.board.tensorboard_server import serve as serve_tensorboard
    from trainboard.links import tensorboard_run_url

    port = free_port(port, host)
    url = f"http://{host}:{port}/"
    # Ctrl-C from the first line on is the way to stop it (a Ctrl-C right after the link is printed too).
    with contextlib.suppress(KeyboardInterrupt):
        progress(f"trainboard: TensorBoard over {logdir} at {tensorboard_run_url(url)} (Ctrl-C to stop)")
        if trials:
            runs = (*trials, champion) if champion else trials
            progress(
                f"trainboard: the tournament's trials, beside the champion: {tensorboard_run_url(url, *runs)}"
            )
        elif run and champion and champion != run:
            progress(f"trainboard: beside champion {champion}: {tensorboard_run_url(url, run, champion)}")
        if run:
            progress(f"trainboard: this run only: {tensorboard_run_url(url, run)}")
        progress(
            "trainboard: the links open on the curves; the confusion matrix and sample images: clear "
            "TensorBoard's tag filter, or its IMAGES tab"
        )
        try:
            with _output_to(log):
                serve_tensorboard(logdir, port, host=host)
        except SystemExit as e:  # TensorBoard's own exit (absl's app.run), e.g. it could not listen
            if e.code in (0, None):
                return 0
            tail = _last_lines(log) if log is not None else []
            return failed_with_log(command, f"TensorBoard stopped with exit code {e.code}", tail, log)
    return 0


@contextlib.contextmanager
def _output_to(log: Path | None) -> Iterator[None]:
    """File descriptors 1 and 2 appended to ``log`` meanwhile: TensorBoard's start-up notes and the
    C++ logging of the libraries its plugins load (TensorFlow's, where installed) write to them directly."""
    if log is None:
        yield
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with log.open("ab") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, original in zip((1, 2), saved, strict=True):
                os.dup2(original, fd)
                os.close(original)


def _last_lines(log: Path) -> deque[str]:
    from trainboard.app.local_run import TAIL_LINES  # as many as a failed step shows

    with log.open(encoding="utf-8", errors="replace") as f:
        return deque(f, maxlen=TAIL_LINES)
