"""`trainboard serve`: the current champion behind KServe's model server (V1 and V2 predict), following
the champion record: a promotion or a rollback is served without a restart."""

from __future__ import annotations

import argparse
import base64
import errno
import getpass
import json
import os
import shlex
import socket
import tempfile
import warnings
from pathlib import Path

from trainboard.app.cli.output import progress
from trainboard.app.cli.root_option import add_root_option, no_root
from trainboard.app.cli.tensorboard import check_port
from trainboard.errors import UsageError
from trainboard.invocation import command
from trainboard.roots import check_root, root_exists

DEFAULT_PORT = 8080  # KServe's model server's own default


def add(commands) -> None:
    p = commands.add_parser(
        "serve",
        help="serve the champion over KServe's V1 and V2 predict APIs; follows promotions and rollbacks",
        description="Serve ROOT's champion (its serving export) with KServe's Python model server: "
        'POST /v1/models/champion:predict with {"instances": [{"b64": ...}]}, or V2 '
        "(/v2/models/champion/infer). A new champion is served within a second or two, without a restart.",
    )
    add_root_option(p)
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on (default: %(default)s)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: %(default)s, this machine only; 0.0.0.0: every address, "
        "with no authentication)",
    )
    p.add_argument(
        "--verbose",
        action="store_true",
        help="KServe's and uvicorn's own logs (a line per request among them)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_port(args.port)
    root = check_root(args.root)
    if not root_exists(root):
        raise no_root(root, "no champion to serve")
    from trainboard.artifacts.champion import read_champion

    record, _ = read_champion(root)
    if record is None:
        raise UsageError(
            "root", f"{root} has no champion yet: nothing to serve; a run that passes the gate makes one"
        )
    _check_free(args.host, args.port)
    if not args.verbose:
        _quiet_kserve()
    from trainboard.app.serving.server import load_served, serve_forever

    progress(f"trainboard serve: loading champion {record.run}")
    served = load_served(record.run, record.model_in(root))
    lines = ready_lines(root, record.model_in(root), args.port, host=args.host)
    listening = (args.host, args.port)
    serve_forever(root, served, listening, on_listening=lambda: print("\n".join(lines), flush=True))
    return 0


def _quiet_kserve() -> None:
    """Quiet by default: KServe logs at INFO, a trace line or two per request (kserve/logging.py reads
    KSERVE_LOGLEVEL as kserve is imported, which is after this), and its handlers use FastAPI's
    ORJSONResponse, which FastAPI 0.165 warns about on the first request."""
    os.environ.setdefault("KSERVE_LOGLEVEL", "WARNING")
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")


def _check_free(host: str, port: int) -> None:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except socket.gaierror as e:
            raise UsageError("host", f"{host!r} is not an address of this machine ({e.strerror})") from None
        except OSError as e:
            field, value = ("host", host) if e.errno == errno.EADDRNOTAVAIL else ("port", port)
            raise UsageError(field, f"{value} cannot be listened on ({e.strerror}); give another") from None


def ready_lines(root: str, model_dir: str, port: int, *, host: str = "127.0.0.1") -> list[str]:
    """The predict URL and a curl line that works as printed: its body, the run's example test image in
    TF Serving's {"b64": ...} form, written to a file of this port's (two servers on two ports never
    share it), its path quoted for a shell."""
    from trainboard import storage
    from trainboard.artifacts.serving_export import example_image

    address = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # every address: loopback is one
    url = f"http://{address}:{port}/v1/models/champion:predict"
    lines = [
        f"trainboard serve: predict: POST {url}",
        f"  V2: http://{address}:{port}/v2/models/champion/infer",
    ]
    image = example_image(model_dir)
    if image is not None:
        folder = Path(tempfile.gettempdir()) / f"trainboard-serve-{getpass.getuser()}"
        folder.mkdir(exist_ok=True)
        body = folder / f"request-{port}.json"
        encoded = base64.b64encode(storage.read_bytes(image)).decode()
        body.write_text(json.dumps({"instances": [{"b64": encoded}]}))
        lines.append(f"  try it (a test image of the run, {image}):")
        data = shlex.quote(f"@{body}")
        lines.append(f"  curl -s -H 'Content-Type: application/json' -d {data} {url}")
    show = command(f"champion show --root {shlex.quote(root)}")
    lines.append(f"  Ctrl-C stops it; `{show}` says which run is champion")
    return lines
