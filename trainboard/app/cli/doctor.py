"""`trainboard doctor`: before a team's first run on a cluster, whether each piece a run needs is there,
one line per check with what to do when it fails (trainboard/app/cluster/doctor.py)."""

from __future__ import annotations

import argparse

from trainboard.app.cli.cluster_options import add_cluster_options, cluster_settings
from trainboard.app.cli.output import add_json_option
from trainboard.app.cli.root_option import add_root_option


def add(commands) -> None:
    p = commands.add_parser(
        "doctor",
        help="check the cluster before a first run: KFP, the root, MLflow; one line each, with the fix",
        description="Check, from here, what a run on the cluster needs: the Kubeflow Pipelines endpoint and "
        "its release, that the root is writable, and MLflow where it is configured. One line per check, "
        "with what to do when it fails. Exit 0 when every required check holds, 1 otherwise.",
    )
    add_cluster_options(p, parameters=False)
    add_root_option(p)
    p.add_argument(
        "--mlflow-tracking-uri",
        default="",
        help="the MLflow tracking server to check (default: $MLFLOW_TRACKING_URI)",
    )
    add_json_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from trainboard.app.cluster.doctor import DoctorInput, all_required_hold, report, run_checks

    given = DoctorInput(cluster_settings(args), args.root, args.mlflow_tracking_uri)
    checks = run_checks(given)
    print(report(checks, args.json))
    return 0 if all_required_hold(checks) else 1
