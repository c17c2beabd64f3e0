"""trainboard: train Keras image classifiers on Kubeflow Pipelines and watch them learn, live.

Starts fast and needs no TensorFlow: each command imports what it uses when it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from dataclasses import fields

from trainboard import layout
from trainboard.config import (
    PromotionRule,
    TrainingConfig,
    UsageError,
    check_config,
    check_promotion_rule,
    check_root,
    check_run_name,
    model_spec,
)

DEFAULT_ROOT = "trainboard-runs"


def _add_local(commands) -> None:
    p = commands.add_parser(
        "local",
        help="run the whole pipeline on this machine (kfp.local), then serve its TensorBoard",
        description="Run prepare_data -> train -> evaluate on this machine through kfp.local. TensorBoard "
        "logs stream to ROOT/tensorboard/RUN/ while training runs; at the end TensorBoard serves "
        "ROOT/tensorboard (every run side by side) on 127.0.0.1.",
    )
    p.add_argument(
        "--dataset",
        default="demo",
        help="demo (generated offline), tfds:NAME[:CONFIG][@VERSION] or folder:URI (default: %(default)s)",
    )
    p.add_argument(
        "--validation-fraction",
        type=float,
        default=0.1,
        help="share carved from train where the source has no validation split (default: %(default)s)",
    )
    p.add_argument(
        "--test-fraction",
        type=float,
        default=0.1,
        help="the same for a missing test split (default: %(default)s)",
    )
    p.add_argument("--tfds-data-dir", default="", help="where TFDS caches downloads and prepared data")
    _add_dataclass_options(p, TrainingConfig)
    _add_dataclass_options(p, PromotionRule)
    p.add_argument(
        "--root",
        default=DEFAULT_ROOT,
        help="storage root: a local folder or gs://BUCKET/PREFIX (default: %(default)s)",
    )
    p.add_argument("--run-name", default="", help="name of this run (default: UTC time + random suffix)")
    p.add_argument(
        "--serve",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="serve TensorBoard when the run ends (default: serve)",
    )
    p.add_argument(
        "--port", type=int, default=6006, help="TensorBoard port, or the next free one (default: 6006)"
    )
    p.add_argument(
        "--json", action="store_true", help="progress to stderr; last line of stdout is the result as JSON"
    )
    p.set_defaults(handler=_local)


def _add_dataclass_options(p: argparse.ArgumentParser, options: type) -> None:
    """One option per field of the dataclass ``options``, with its type, default and help."""
    for option in fields(options):
        flag = "--" + option.name.replace("_", "-")
        default = None if option.name == "image_size" else option.default
        if option.type == "bool":
            p.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=default, help=option.metadata["help"]
            )
        else:
            kind = {"int": int, "float": float, "str": str}[option.type]
            shown = "" if default is None else " (default: %(default)s)"
            p.add_argument(flag, type=kind, default=default, help=option.metadata["help"] + shown)


def _option_values(args: argparse.Namespace, options: type) -> dict:
    return {option.name: getattr(args, option.name) for option in fields(options)}


def _training_config(args: argparse.Namespace) -> TrainingConfig:
    values = _option_values(args, TrainingConfig)
    if values["image_size"] is None:
        values["image_size"] = model_spec(values["model"]).default_image_size
    return TrainingConfig(**values)


def _local(args: argparse.Namespace) -> int:
    from trainboard.components.prepare_data.sources import check_fraction, check_source

    config = _training_config(args)
    check_config(config)
    rule = PromotionRule(**_option_values(args, PromotionRule))
    check_promotion_rule(rule)
    root = check_root(args.root, must_exist=True)
    run = args.run_name or layout.new_run_name()
    check_run_name(run)
    check_fraction("validation_fraction", args.validation_fraction)
    check_fraction("test_fraction", args.test_fraction)
    check_source(args.dataset, args.tfds_data_dir)  # last: a tfds: source loads TensorFlow Datasets

    from trainboard.local_run import run_local

    tensorboard_root = layout.tensorboard_root(root)
    _progress(f"trainboard: run {run}: TensorBoard logs stream to {layout.tensorboard_dir(root, run)}")
    _progress(f"trainboard: watch it live: trainboard tensorboard --logdir {tensorboard_root}")
    result = run_local(
        root,
        run,
        config,
        rule,
        dataset=args.dataset,
        data_options={
            "validation_fraction": args.validation_fraction,
            "test_fraction": args.test_fraction,
            "tfds_data_dir": args.tfds_data_dir,
        },
        quiet_stdout=args.json,
    )
    _progress(
        f"trainboard: run {run} finished: test accuracy {result.metrics['test_accuracy']:.3f}, "
        f"test loss {result.metrics['test_loss']:.3f}; model at {result.model_uri}"
    )
    promotion = "promoted: it is the champion" if result.promoted else "not promoted"
    _progress(f"trainboard: run {run} {promotion}; champion: {result.champion or 'none'}")
    if args.json:
        print(json.dumps(result.as_json()), flush=True)
    if args.serve:
        _serve(tensorboard_root, args.port, run)
    return 0


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _add_compile(commands) -> None:
    p = commands.add_parser(
        "compile",
        help="compile the pipeline to a KFP v2 YAML for Kubeflow Pipelines or Vertex AI",
        description="Compile the trainboard pipeline into a YAML that `kfp run create -f` takes.",
    )
    p.add_argument("-o", "--output", default="pipeline.yaml", help="output file (default: %(default)s)")
    p.set_defaults(handler=_compile)


def _compile(args: argparse.Namespace) -> int:
    from kfp import compiler

    from trainboard.pipelines.training_pipeline import training_pipeline

    compiler.Compiler().compile(training_pipeline, args.output)
    _progress(f"trainboard: wrote {args.output}")
    return 0


def _add_tensorboard(commands) -> None:
    p = commands.add_parser(
        "tensorboard",
        help="serve TensorBoard over a root's runs (local folder or gs://)",
        description="Serve TensorBoard over ROOT/tensorboard: every run side by side, new runs and new "
        "epochs appear as they are written.",
    )
    p.add_argument(
        "--logdir",
        default=layout.tensorboard_root(DEFAULT_ROOT),
        help="ROOT/tensorboard, a local folder or gs://BUCKET/PREFIX/tensorboard (default: %(default)s)",
    )
    p.add_argument("--port", type=int, default=6006, help="port, or the next free one (default: %(default)s)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.set_defaults(handler=_tensorboard)


def _tensorboard(args: argparse.Namespace) -> int:
    try:
        logdir = check_root(args.logdir)
    except UsageError as e:
        raise UsageError("logdir", e.problem) from None
    _serve(logdir, args.port, host=args.host)
    return 0


def _serve(logdir: str, port: int, run: str = "", host: str = "127.0.0.1") -> None:
    from trainboard.links import tensorboard_run_url
    from trainboard.tensorboard_server import free_port, serve

    port = free_port(port, host)
    url = f"http://{host}:{port}/"
    _progress(f"trainboard: TensorBoard over {logdir} at {url} (Ctrl-C to stop)")
    if run:
        _progress(f"trainboard: this run only: {tensorboard_run_url(url, run)}")
    with contextlib.suppress(KeyboardInterrupt):
        serve(logdir, port, host)


def _add_cluster_options(p: argparse.ArgumentParser) -> None:
    """What submit and schedule share: where the cluster is, and the pipeline's parameters."""
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


def _cluster_settings(args: argparse.Namespace):
    """The settings from the flags (each named like its setting), the environment and the config file."""
    from dataclasses import fields

    from trainboard.settings import ClusterSettings, load_settings

    return load_settings(args.config, **{f.name: getattr(args, f.name) for f in fields(ClusterSettings)})


def _add_submit(commands) -> None:
    p = commands.add_parser(
        "submit",
        help="run the pipeline once on Kubeflow Pipelines; prints the KFP run and its TensorBoard link",
        description="Compile the pipeline and start one run on Kubeflow Pipelines. Parameters are checked "
        "against the pipeline's own before anything is sent; the run gets a unique name (also its name "
        "under ROOT/tensorboard), and its KFP URL and team TensorBoard link are printed.",
    )
    _add_cluster_options(p)
    p.add_argument("--run-name", default="", help="name of the run (default: UTC time + random suffix)")
    p.add_argument(
        "--wait", action="store_true", help="wait for the run to finish; exit 1 unless it succeeded"
    )
    p.set_defaults(handler=_submit)


def _submit(args: argparse.Namespace) -> int:
    from trainboard import submit

    settings = _cluster_settings(args)
    try:
        submitted = submit.submit(settings, args.param, args.run_name)
        print(f"trainboard: submitted run {submitted.run} to experiment {settings.experiment}")
        print(f"KFP run:     {submitted.run_url}")
        print(
            f"TensorBoard: {submitted.tensorboard_url or '(no team TensorBoard URL set: --tensorboard-url)'}"
        )
        if not args.wait:
            return 0
        state = submit.wait(settings, submitted.run_id)
    except submit.ServerError as e:
        return _server_error("submit", e)
    print(f"trainboard: run {submitted.run} {state}")
    return 0 if state == "SUCCEEDED" else 1


def _add_schedule(commands) -> None:
    p = commands.add_parser(
        "schedule",
        help="create an enabled recurring run on Kubeflow Pipelines (one at a time, no catch-up)",
        description="Compile the pipeline and create an enabled recurring run: max concurrency 1 and no "
        "catch-up unless told otherwise; every execution gets its own run name.",
    )
    _add_cluster_options(p)
    p.add_argument("--name", required=True, help="name of the recurring run")
    p.add_argument(
        "--cron",
        required=True,
        help="6 fields, seconds first: second minute hour day-of-month month day-of-week, "
        "e.g. '0 0 3 * * *' (03:00 UTC daily)",
    )
    p.add_argument("--max-concurrency", type=int, default=1, help="runs at once (default: %(default)s)")
    p.add_argument("--catchup", action="store_true", help="backfill missed intervals (default: no catch-up)")
    p.set_defaults(handler=_schedule)


def _schedule(args: argparse.Namespace) -> int:
    from trainboard import submit

    settings = _cluster_settings(args)
    try:
        scheduled = submit.schedule(
            settings, args.param, args.name, args.cron, args.max_concurrency, args.catchup
        )
    except submit.ServerError as e:
        return _server_error("schedule", e)
    catchup = "catch-up" if args.catchup else "no catch-up"
    print(
        f"trainboard: schedule {scheduled.name} enabled: cron '{args.cron}', "
        f"max concurrency {args.max_concurrency}, {catchup}"
    )
    print(f"KFP recurring run: {scheduled.url}")
    if settings.tensorboard_url:
        print(f"TensorBoard:       {settings.tensorboard_url}")
    return 0


def _server_error(command: str, error: Exception) -> int:
    print(f"trainboard {command}: error: {error}", file=sys.stderr)
    return 1


def _add_manifests(commands) -> None:
    from trainboard.manifests import OVERLAYS

    p = commands.add_parser(
        "manifests",
        help="print ready-to-apply Kubernetes YAML for the team TensorBoard over a bucket",
        description="Render manifests/ (kustomize) for one bucket: the team TensorBoard over "
        "BUCKET/PREFIX/tensorboard. Apply with `trainboard manifests ... | kubectl apply -f -`.",
    )
    p.add_argument("--bucket", required=True, help="the pipeline's root, gs://BUCKET[/PREFIX]")
    p.add_argument("--overlay", required=True, help=f"one of {', '.join(OVERLAYS)}")
    p.add_argument("--namespace", default="", help="namespace of every object (default: kubectl's current)")
    p.add_argument(
        "--project",
        default="",
        help="Google Cloud project of the Workload Identity service account "
        "trainboard-tensorboard@PROJECT.iam.gserviceaccount.com (gke, kubeflow)",
    )
    p.add_argument("--domain", default="", help="host name of the HTTPS front door (gke)")
    p.add_argument("--kubectl", default="kubectl", help="kubectl to render with (default: %(default)s)")
    p.set_defaults(handler=_manifests)


def _manifests(args: argparse.Namespace) -> int:
    from trainboard.manifests import render

    print(render(args.bucket, args.overlay, args.namespace, args.project, args.domain, args.kubectl), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trainboard",
        description="Train Keras image classifiers on Kubeflow Pipelines and watch them learn, live, in one "
        "shared TensorBoard.",
        epilog="Start with `trainboard local`: the whole pipeline on this machine, on generated demo data.",
    )
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND", required=True)
    _add_local(commands)
    _add_compile(commands)
    _add_tensorboard(commands)
    _add_submit(commands)
    _add_schedule(commands)
    _add_manifests(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except UsageError as e:
        # An environment variable (TRAINBOARD_IMAGE) is named as it is; a field by its option.
        option = e.field if e.field.isupper() else "--" + e.field.replace("_", "-")
        parser.exit(2, f"trainboard {args.command}: error: {option}: {e.problem}\n")


if __name__ == "__main__":
    sys.exit(main())
