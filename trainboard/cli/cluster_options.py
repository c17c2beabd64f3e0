"""What `submit` and `schedule` share: where the cluster is, and the pipeline's parameters."""

from __future__ import annotations

import argparse
from dataclasses import fields

from trainboard.cluster.settings import ClusterSettings, load_settings


def add_cluster_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--endpoint", help="Kubeflow Pipelines URL (default: $KF_PIPELINES_ENDPOINT or the config file)"
    )
    p.add_argument("--token", help="bearer token (default: $KF_PIPELINES_TOKEN or the config file)")
    p.add_argument("--experiment", help="KFP experiment, created when missing (default: trainboard)")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a pipeline parameter (repeatable), e.g. --param root=gs://BUCKET/trainboard --param epochs=20; "
        "names and types are the pipeline's own (`trainboard compile` and read the YAML)",
    )
    p.add_argument("--service-account", help="Kubernetes service account the run's pods use")
    p.add_argument(
        "--tensorboard-url", help="the team TensorBoard (default: $TRAINBOARD_TENSORBOARD_URL or config)"
    )
    p.add_argument(
        "--config",
        help="TOML settings file (default: $TRAINBOARD_CONFIG or ~/.config/trainboard/config.toml)",
    )


def cluster_settings(args: argparse.Namespace) -> ClusterSettings:
    """The settings from the flags (each named like its setting), the environment and the config file."""
    return load_settings(args.config, **{f.name: getattr(args, f.name) for f in fields(ClusterSettings)})
