"""`trainboard manifests`: ready-to-apply Kubernetes YAML for the team TensorBoard over a bucket."""

from __future__ import annotations

import argparse

from trainboard.app.kustomize import OVERLAYS


def add(commands) -> None:
    p = commands.add_parser(
        "manifests",
        help="print ready-to-apply Kubernetes YAML for the team TensorBoard over a bucket",
        description="Render manifests/ (kustomize) for one bucket: the team TensorBoard over "
        "BUCKET/PREFIX/tensorboard. Apply with `trainboard manifests ... | kubectl apply -f -`.",
    )
    p.add_argument("--bucket", required=True, help="the pipeline's root, gs://BUCKET[/PREFIX]")
    p.add_argument(
        "--overlay",
        required=True,
        choices=OVERLAYS,
        help="the cluster's kind (docs/team-tensorboard.md: Overlays)",
    )
    p.add_argument("--namespace", default="", help="namespace of every object (default: kubectl's current)")
    p.add_argument(
        "--project",
        default="",
        help="Google Cloud project of the Workload Identity service account "
        "trainboard-tensorboard@PROJECT.iam.gserviceaccount.com (required by gke and kubeflow)",
    )
    p.add_argument("--domain", default="", help="host name of the HTTPS front door (required by gke)")
    p.add_argument(
        "--serving",
        action="store_true",
        help="also the champion's KServe InferenceService over BUCKET/PREFIX/models/champion/serving, "
        "its read-only ServiceAccount (Workload Identity trainboard-serving@PROJECT with --project) and "
        "the rollout's rights (manifests/components/serving; needs KServe: docs/serving.md)",
    )
    p.add_argument("--kubectl", default="kubectl", help="kubectl to render with (default: %(default)s)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from trainboard.app.kustomize import render

    yaml = render(
        args.bucket,
        args.overlay,
        namespace=args.namespace,
        project=args.project,
        domain=args.domain,
        kubectl=args.kubectl,
        serving=args.serving,
        placeholders=False,
    )
    print(yaml, end="")
    return 0
