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
        help="check the cluster before a first run: KFP, the root, Kubernetes, MLflow; a line each, the fix",
        description="Check, from here, what a run on the cluster needs: the Kubeflow Pipelines endpoint and "
        "its release, that the root is writable, MLflow where it is configured, and on Kubernetes (the "
        "kubeconfig's context, or the pod's service account) the team TensorBoard, the notification Secret, "
        "GPU nodes, Trainer with workers > 1, KServe with --serving, the Model Registry. One line per check, "
        "with what to do when it fails. Exit 0 when every required check holds, 1 otherwise.",
    )
    add_cluster_options(
        p
    )  # --param as submit's: workers, gpu_node_selector, model_registry say what to check
    p.add_argument(
        "--serving",
        action="store_true",
        help="the champion is served (manifests/components/serving): check KServe and the InferenceService",
    )
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
    from trainboard.app.cluster.params import parse_params
    from trainboard.app.cluster.pipeline_spec import compiled_pipeline, pipeline_parameters
    from trainboard.checks import check_http_url

    parameters = parse_params(args.param, pipeline_parameters(compiled_pipeline()))
    if parameters.get("model_registry"):
        check_http_url("model_registry", parameters["model_registry"])
    given = DoctorInput(
        cluster_settings(args),
        args.root,
        args.mlflow_tracking_uri,
        parameters=parameters,
        serving=args.serving,
    )
    checks = run_checks(given)
    print(report(checks, args.json))
    return 0 if all_required_hold(checks) else 1
