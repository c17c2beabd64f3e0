"""Serve TensorBoard over a trainboard root's ``tensorboard/`` folder, local or gs://.

TensorBoard runs in its TensorFlow-free mode and reads gs:// through gcsfs: TensorFlow's own GCS file
system has a fixed endpoint (no emulator) and is heavy to import; gcsfs honours STORAGE_EMULATOR_HOST
and the default credentials (Workload Identity) alike.

``python -m trainboard.board.tensorboard_server --logdir DIR`` is the command of the TensorBoard container in
``manifests/`` (and what the tests run from the rendered manifest).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import types

from trainboard import storage

# Re-read the bucket's listings each reload, so that runs started after TensorBoard show up.
_GCSFS_SETTINGS: dict[str, int | str] = {"cache_timeout": 0}


# TensorBoard's loaders: "true" its Rust data server (tensorboard-data-server), "false" the Python one,
# "auto" the Rust one when it is installed.
LOADERS = ("auto", "true", "false")


def tensorboard_argv(
    logdir: str, port: int, *, host: str = "127.0.0.1", reload_interval: int = 5, load_fast: str = "auto"
) -> list[str]:
    argv = [
        "tensorboard",
        f"--logdir={logdir}",
        f"--host={host}",
        f"--port={port}",
        f"--reload_interval={reload_interval}",
        # A resumed run has several event files in one folder; read them all, not just the newest.
        "--reload_multifile=true",
    ]
    # The Rust data server has its own GCS client with fixed endpoints: gs:// is read by the Python one.
    argv.append(f"--load_fast={'false' if storage.is_gcs(logdir) else load_fast}")
    return argv


def free_port(start: int = 6006, host: str = "127.0.0.1") -> int:
    """The first port from ``start`` that nothing listens on."""
    for port in range(start, start + 100):
        with socket.socket() as s:
            if s.connect_ex((host, port)) != 0:
                return port
    raise RuntimeError(f"no free port in {start}-{start + 99}")


def serve(
    logdir: str, port: int, *, host: str = "127.0.0.1", reload_interval: int = 5, load_fast: str = "auto"
) -> None:
    """Run TensorBoard in this process until interrupted."""
    settings = dict(_GCSFS_SETTINGS)
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        settings["token"] = "anon"
    os.environ["FSSPEC_GCS"] = json.dumps(settings)  # read when fsspec is first imported
    os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    # TensorBoard's own switch for running without TensorFlow, even where TensorFlow is installed.
    sys.modules["tensorboard.compat.notf"] = types.ModuleType("tensorboard.compat.notf")
    from tensorboard import main as tensorboard_main

    sys.argv = tensorboard_argv(logdir, port, host=host, reload_interval=reload_interval, load_fast=load_fast)
    tensorboard_main.run_main()


def main(argv: list[str] | None = None) -> None:
    """The container's entry point: serve ``--logdir`` on exactly ``--host``:``--port``."""
    parser = argparse.ArgumentParser(
        prog="python -m trainboard.board.tensorboard_server", description=main.__doc__
    )
    parser.add_argument("--logdir", required=True, help="a local folder or gs://BUCKET/PREFIX/tensorboard")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=6006, help="default: %(default)s")
    parser.add_argument(
        "--reload-interval", type=int, default=5, help="seconds between re-reads of the logdir (default: 5)"
    )
    parser.add_argument(
        "--load-fast",
        choices=LOADERS,
        default="auto",
        help="a local --logdir read by TensorBoard's Rust data server (true), its Python loader (false) or "
        "the Rust one when installed (auto, the default); gs:// is always read by the Python one",
    )
    args = parser.parse_args(argv)
    serve(
        storage.check_uri(args.logdir),
        args.port,
        host=args.host,
        reload_interval=args.reload_interval,
        load_fast=args.load_fast,
    )


if __name__ == "__main__":
    main()
