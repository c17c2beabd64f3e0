"""Mirror a bucket prefix into a local folder, incrementally: the TensorBoard pod's sidecar.

The mirror itself is trainboard.storage.BucketMirror (why it exists: its docstring); this is its command,
run by the TensorBoard Deployment.

``python -m trainboard.bucket_mirror --source gs://BUCKET/PREFIX/tensorboard --dest /logs``

Health: ``GET http://HOST:HEALTH_PORT/healthz`` answers 200 while the mirror is current (its last
successful sync, or a download still moving, is less than ``--stale-after`` seconds old) and 503 when it
is stale (hung, or every sync failing); both with a JSON body: last_success (Unix time, null before the
first), age_seconds, last_error, bytes_received. The Deployment's probes read it: liveness restarts a
stale mirror, readiness marks the pod not ready so that a stale board shows in ``kubectl get pods``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from trainboard import storage
from trainboard.storage import BucketMirror


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m trainboard.bucket_mirror", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--source", required=True, help="gs://BUCKET/PREFIX/tensorboard (or a local folder)")
    parser.add_argument("--dest", required=True, help="local folder that TensorBoard reads")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between listings (default: 5)")
    parser.add_argument(
        "--keep-runs",
        type=int,
        default=0,
        help="mirror only the latest N runs and every run ever promoted (a models/<run>/ beside the source); "
        "other runs are deleted from --dest (default: 0, every run)",
    )
    parser.add_argument(
        "--max-mib",
        type=float,
        default=0,
        help="the most MiB of runs in --dest: the latest promoted run, then the newest, while they fit; a "
        "run left out is logged once (default: 0, no bound)",
    )
    parser.add_argument("--once", action="store_true", help="one sync, then exit (1 if it failed)")
    parser.add_argument(
        "--health-port", type=int, default=0, help="serve GET /healthz on this port (default: 0, none)"
    )
    parser.add_argument("--health-host", default="0.0.0.0", help="address of /healthz (default: 0.0.0.0)")
    parser.add_argument(
        "--stale-after",
        type=float,
        default=300.0,
        help="seconds without a successful sync (or a moving download) before /healthz says stale "
        "(default: 300)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    if args.keep_runs < 0:
        parser.error(f"--keep-runs must be 0 (every run) or more, got {args.keep_runs}")
    if args.max_mib < 0:
        parser.error(f"--max-mib must be 0 (no bound) or more, got {args.max_mib}")
    mirror = BucketMirror(
        storage.check_uri(args.source),
        Path(args.dest),
        keep_runs=args.keep_runs,
        max_bytes=int(args.max_mib * 2**20),
    )
    health = Health(mirror, args.stale_after)
    if args.health_port:
        serve_health(health, args.health_host, args.health_port)
    while True:
        started = time.monotonic()
        try:
            received = mirror.sync()
        except Exception as e:  # a storage hiccup must not stop the mirror; the next interval retries
            health.last_error = repr(e)
            print(f"bucket_mirror: sync failed: {e!r}", file=sys.stderr, flush=True)
            if args.once:
                sys.exit(1)
        else:
            health.last_success, health.last_error = time.time(), None
            if received:
                print(f"bucket_mirror: {received} bytes from {args.source}", file=sys.stderr, flush=True)
            if args.once:
                return
        time.sleep(max(0.0, args.interval - (time.monotonic() - started)))


if __name__ == "__main__":
    main()
