"""`trainboard submit`: one run of the pipeline on Kubeflow Pipelines, with its KFP and TensorBoard links."""

from __future__ import annotations

import argparse

from trainboard.cli.cluster_options import add_cluster_options, cluster_settings
from trainboard.cli.output import server_error


def add(commands) -> None:
    p = commands.add_parser(
        "submit",
        help="run the pipeline once on Kubeflow Pipelines; prints the KFP run and its TensorBoard link",
        description="Compile the pipeline and start one run on Kubeflow Pipelines. Parameters are checked "
        "against the pipeline's own before anything is sent; the run gets a unique name (also its name "
        "under ROOT/tensorboard), and its KFP URL and team TensorBoard link are printed.",
    )
    add_cluster_options(p)
    p.add_argument("--run-name", default="", help="name of the run (default: UTC time + random suffix)")
    p.add_argument(
        "--wait", action="store_true", help="wait for the run to finish; exit 1 unless it succeeded"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from trainboard.cluster import client

    settings = cluster_settings(args)
    try:
        submitted = client.submit(settings, args.param, args.run_name)
        print(f"trainboard: submitted run {submitted.run} to experiment {settings.experiment}")
        print(f"KFP run:     {submitted.run_url}")
        print(
            f"TensorBoard: {submitted.tensorboard_url or '(no team TensorBoard URL set: --tensorboard-url)'}"
        )
        if not args.wait:
            return 0
        state = client.wait(settings, submitted.run_id)
    except client.ServerError as e:
        return server_error("submit", e)
    print(f"trainboard: run {submitted.run} {state}")
    return 0 if state == "SUCCEEDED" else 1
