"""What `submit` and `schedule` (each action) share: where the cluster is, and the pipeline's parameters."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from trainboard.app.cli.output import progress
from trainboard.app.cluster.auth import credentials, exposure_warnings
from trainboard.app.cluster.settings import ClusterSettings, load_settings, setting_names


def add_cluster_options(p: argparse.ArgumentParser, parameters: bool = True) -> None:
    """The settings' options; with ``parameters``, --param too (submit, schedule create)."""
    p.add_argument(
        "--endpoint", help="Kubeflow Pipelines URL (default: $KF_PIPELINES_ENDPOINT or the config file)"
    )
    p.add_argument(
        "--token",
        help="bearer token (default: $KF_PIPELINES_TOKEN, the config file, the in-cluster service-account "
        "token at $KF_PIPELINES_SA_TOKEN_PATH, or kfp's saved session); prefer the environment or the "
        "config file: a token on the command line lands in the shell history",
    )
    p.add_argument(
        "--namespace",
        help="multi-user Kubeflow: the profile namespace of the experiment and runs "
        "(default: $TRAINBOARD_NAMESPACE, the config file, or kfp's saved context)",
    )
    p.add_argument(
        "--skip-version-check",
        action="store_true",
        help="send even when the server does not report a release (healthz tag_name); see "
        "docs/cluster.md 'Supported backends'",
    )
    p.add_argument("--experiment", help="KFP experiment, created when missing (default: trainboard)")
    if parameters:
        _add_param_option(p)
    p.add_argument("--service-account", help="Kubernetes service account the run's pods use")
    p.add_argument(
        "--tensorboard-url", help="the team TensorBoard (default: $TRAINBOARD_TENSORBOARD_URL or config)"
    )
    p.add_argument(
        "--config",
        help="TOML settings file (default: $TRAINBOARD_CONFIG or ~/.config/trainboard/config.toml)",
    )


def _add_param_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a pipeline parameter (repeatable), e.g. --param root=gs://BUCKET/trainboard --param epochs=20; "
        "names and types are the pipeline's own (`trainboard compile` and read the YAML)",
    )


def cluster_settings(args: argparse.Namespace) -> ClusterSettings:
    """The settings from the flags (each named like its setting), the environment and the config file."""
    settings = load_settings(args.config, **{name: getattr(args, name) for name in setting_names()})
    token_file = Path(settings.token_file) if settings.token_file else None
    for warning in exposure_warnings(
        settings.endpoint, credentials(settings.token, settings.endpoint), token_file
    ):
        progress(f"trainboard: warning: {warning}")
    return replace(settings, skip_version_check=args.skip_version_check)
