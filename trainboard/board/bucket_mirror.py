"""Mirror a bucket prefix into a local folder, incrementally: the TensorBoard pod's sidecar.

The mirror itself is trainboard.board.mirror.BucketMirror (why it exists: its docstring); this is its command,
run by the TensorBoard Deployment.

``python -m trainboard.board.bucket_mirror --source gs://BUCKET/PREFIX/tensorboard --dest /logs``

Three clocks: every ``--interval`` seconds the whole prefix is listed (the safety net: every run, retention,
deletions); every ``--lease-interval`` the leases beside it (``<root>/leases/``: the runs training now);
every ``--live-interval`` the folders of those runs alone. Storage requests a minute, idle:
60/lease-interval + (pages of the prefix + pages of models/) * 60/interval, and 60/live-interval more for
each run training (docs/design.md).

Health: ``GET http://HOST:HEALTH_PORT/healthz`` answers 200 while the mirror is current (its last
successful sync, or a download still moving, is less than ``--stale-after`` seconds old) and 503 when it
is stale (hung, or every sync failing); both with a JSON body: last_success (Unix time, null before the
first), age_seconds, last_error, bytes_received. The Deployment's probes read it: liveness restarts a
stale mirror, readiness marks the pod not ready so that a stale board shows in ``kubectl get pods``.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import math
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NoReturn

from trainboard.board.mirror import BucketMirror
from trainboard.errors import OneLineParser, UsageError
from trainboard.roots import checked_uri

MAX_PORT = 65535


class Health:
    """The mirror's health, as the probes see it."""

    def __init__(self, mirror: BucketMirror, stale_after: float) -> None:
        self.mirror, self.stale_after = mirror, stale_after
        self.started = time.time()
        self.last_success: float | None = None
        self.last_error: str | None = None

    def report(self) -> tuple[bool, dict]:
        now = time.time()
        alive_at = max(self.last_success or self.started, self.mirror.last_progress)
        age = now - alive_at
        return age < self.stale_after, {
            "last_success": self.last_success,
            "age_seconds": round(age, 3),
            "stale_after_seconds": self.stale_after,
            "last_error": self.last_error,
            "bytes_received": self.mirror.bytes_received,
        }


def serve_health(health: Health, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/healthz":
                self.send_error(404)
                return
            ok, body = health.report()
            data = json.dumps(body).encode()
            self.send_response(200 if ok else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass  # a probe every few seconds is not news

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="mirror-health", daemon=True).start()
    return server


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _check_number(field: str, value: float, ok: bool, allowed: str) -> None:
    if not (ok and math.isfinite(value)):
        raise UsageError(field, f"must be {allowed}, got {value}")


def _checked(args: argparse.Namespace) -> argparse.Namespace:
    """The arguments argparse cannot check by type; UsageError naming the first one that is wrong."""
    args.source = checked_uri(args.source, "source")
    if Path(args.dest).exists() and not Path(args.dest).is_dir():
        raise UsageError("dest", f"{args.dest} is a file; expected a folder (made if it does not exist)")
    for name in ("interval", "live_interval", "lease_interval"):
        value = getattr(args, name)
        _check_number(name, value, value > 0, "a number of seconds greater than 0")
    _check_number("workers", args.workers, args.workers >= 1, "1 or more")
    _check_number("keep_runs", args.keep_runs, args.keep_runs >= 0, "0 (every run) or more")
    _check_number("max_mib", args.max_mib, args.max_mib >= 0, "0 (no bound) or a number of MiB")
    _check_number(
        "health_port", args.health_port, 0 <= args.health_port <= MAX_PORT, f"0 (none) or 1-{MAX_PORT}"
    )
    _check_number("stale_after", args.stale_after, args.stale_after > 0, "a number of seconds greater than 0")
    return args


def _listening(health: Health, host: str, port: int) -> None:
    """Serve /healthz, or UsageError naming the argument that stops it (a port in use, an unknown host)."""
    try:
        serve_health(health, host, port)
    except (OSError, UnicodeError) as e:
        field = "health_port" if getattr(e, "errno", None) == errno.EADDRINUSE else "health_host"
        reason = getattr(e, "strerror", None) or e
        raise UsageError(
            field,
            f"cannot listen on {host}:{port} ({reason}); expected a free port of an "
            "address of this machine, e.g. 0.0.0.0",
        ) from None


def _described(e: Exception) -> str:
    """The error with its message: repr would drop a PermissionError's path."""
    return f"{type(e).__name__}: {e}"


def _synced(sync: Callable[[], int | None], health: Health, source: str, full: bool) -> bool:
    """Run one sync; a failure is logged and kept for /healthz (the next interval retries). Health's
    clock is the full sync's: the safety net must keep succeeding."""
    try:
        received = sync()
    except Exception as e:  # a storage hiccup must not stop the mirror; the next interval retries
        health.last_error = _described(e)
        print(f"bucket_mirror: sync failed: {health.last_error}", file=sys.stderr, flush=True)
        return False
    if full:
        health.last_success, health.last_error = time.time(), None
    if received:
        print(f"bucket_mirror: {received} bytes from {source}", file=sys.stderr, flush=True)
    return True


def _run(mirror: BucketMirror, health: Health, args: argparse.Namespace) -> NoReturn:
    """The three clocks of the module's docstring, in one thread (the syncs share the volume's state)."""
    next_full = next_leases = next_live = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= next_full:
            next_full = now + args.interval
            _synced(mirror.sync, health, args.source, full=True)
        if now >= next_leases:
            next_leases = now + args.lease_interval
            _synced(mirror.refresh_leases, health, args.source, full=False)
        if now >= next_live:
            next_live = now + args.live_interval
            _synced(mirror.sync_live, health, args.source, full=False)
        time.sleep(max(0.0, min(next_full, next_leases, next_live) - time.monotonic()))


def _parser() -> OneLineParser:
    parser = OneLineParser(
        prog="python -m trainboard.board.bucket_mirror", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--source", required=True, help="gs://BUCKET/PREFIX/tensorboard (or a local folder)")
    parser.add_argument("--dest", required=True, help="local folder that TensorBoard reads")
    _add_clock_options(parser)
    _add_volume_options(parser)
    parser.add_argument("--once", action="store_true", help="one sync, then exit (1 if it failed)")
    _add_health_options(parser)
    return parser


def _add_clock_options(parser: OneLineParser) -> None:
    """The three clocks of the module's docstring."""
    parser.add_argument(
        "--interval",
        type=_number,
        default=5.0,
        help="seconds between listings of the whole prefix (default: 5)",
    )
    parser.add_argument(
        "--live-interval",
        type=_number,
        default=1.0,
        help="seconds between listings of the folders of the runs training now (default: 1)",
    )
    parser.add_argument(
        "--lease-interval",
        type=_number,
        default=5.0,
        help="seconds between listings of the leases beside the prefix (<root>/leases/, default: 5)",
    )


def _add_volume_options(parser: OneLineParser) -> None:
    """How many downloads at once, and which runs the volume holds."""
    parser.add_argument(
        "--workers", type=_whole_number, default=8, help="folders fetched at once (default: 8)"
    )
    parser.add_argument(
        "--keep-runs",
        type=_whole_number,
        default=0,
        help="mirror only the latest N runs and every run ever promoted (a models/<run>/ beside the source); "
        "other runs are deleted from --dest (default: 0, every run)",
    )
    parser.add_argument(
        "--max-mib",
        type=_number,
        default=0,
        help="the most MiB of runs in --dest: the latest promoted run, then the newest, while they fit; a "
        "run left out is logged once (default: 0, no bound)",
    )


def _add_health_options(parser: OneLineParser) -> None:
    """/healthz: where it is served, and when it says stale."""
    parser.add_argument(
        "--health-port",
        type=_whole_number,
        default=0,
        help="serve GET /healthz on this port (default: 0, none)",
    )
    parser.add_argument("--health-host", default="0.0.0.0", help="address of /healthz (default: 0.0.0.0)")
    parser.add_argument(
        "--stale-after",
        type=_number,
        default=300.0,
        help="seconds without a successful sync (or a moving download) before /healthz says stale "
        "(default: 300)",
    )


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    try:
        args = _checked(parser.parse_args(argv))
        mirror = BucketMirror(
            args.source,
            Path(args.dest),
            keep_runs=args.keep_runs,
            max_bytes=int(args.max_mib * 2**20),
            workers=args.workers,
        )
        health = Health(mirror, args.stale_after)
        if args.health_port:
            _listening(health, args.health_host, args.health_port)
    except UsageError as e:
        parser.error(f"--{e.field.replace('_', '-')}: {e.problem}")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    if args.once:
        sys.exit(0 if _synced(mirror.sync, health, args.source, full=True) else 1)
    _run(mirror, health, args)


if __name__ == "__main__":
    main()
