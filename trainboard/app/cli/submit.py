"""`trainboard submit`: one run of the pipeline on Kubeflow Pipelines, with its KFP and TensorBoard links."""

from __future__ import annotations

import argparse

from trainboard.app.cli.cluster_options import add_cluster_options, cluster_settings
from trainboard.app.cli.output import progress, server_error
from trainboard.errors import UsageError


def add(commands) -> None:
    p = commands.add_parser(
        "submit",
        help="run the pipeline once on Kubeflow Pipelines; prints the KFP run and its TensorBoard link",
        description="Compile the pipeline and start one run on Kubeflow Pipelines. Parameters are checked "
        "against the pipeline's own before anything is sent; the run gets a unique name (also its name "
        "under ROOT/tensorboard), and its KFP URL and team TensorBoard link are printed.",
    )
    add_cluster_options(p)
    p.add_argument("--run-name", default=None, help="name of the run (default: UTC time + random suffix)")
    p.add_argument(
        "--wait",
        action="store_true",
        help="wait for the run to finish: exit 0 if it succeeded, 1 if it failed (or was canceled), 3 if the "
        "API stopped answering, 4 at --timeout",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=0,
        help="with --wait: give up waiting after this many seconds (0: never)",
    )
    p.set_defaults(handler=run)


EXIT_TIMEOUT = 4


def run(args: argparse.Namespace) -> int:
    from trainboard.app.cluster import runs
    from trainboard.app.cluster.connection import ServerError

    if args.timeout < 0:
        raise UsageError("timeout", f"must be 0 (no limit) or more seconds, got {args.timeout:g}")
    settings = cluster_settings(args)
    try:
        submitted = runs.submit(settings, args.param, args.run_name)
        for note in submitted.notes:
            progress(f"trainboard: note: {note}")
        print(f"trainboard: submitted run {submitted.run} to experiment {settings.experiment}")
        print(f"KFP run:     {submitted.run_url}")
        print(
            f"TensorBoard: {submitted.tensorboard_url or '(no team TensorBoard URL set: --tensorboard-url)'}"
        )
        if not args.wait:
            return 0
        state = runs.wait(settings, submitted.run_id, args.timeout)
    except ServerError as e:  # refused: 1; stopped answering or answered wrongly: 3
        return server_error("submit", e)
    except runs.WaitTimeout as e:
        server_error("submit", e)
        return EXIT_TIMEOUT
    print(f"trainboard: run {submitted.run} {state}")
    return 0 if state == "SUCCEEDED" else 1
