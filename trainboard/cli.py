"""trainboard: train Keras image classifiers on Kubeflow Pipelines and watch them learn, live.

Starts fast and needs no TensorFlow: each command imports what it uses when it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from trainboard import layout
from trainboard.config import (
    MODELS,
    TrainingConfig,
    UsageError,
    check_config,
    check_dataset,
    check_root,
    check_run_name,
    model_spec,
)

DEFAULT_ROOT = "trainboard-runs"
_DEFAULTS = TrainingConfig()


def _add_local(commands) -> None:
    p = commands.add_parser(
        "local",
        help="run the whole pipeline on this machine (kfp.local), then serve its TensorBoard",
        description="Run prepare_data -> train -> evaluate on this machine through kfp.local. TensorBoard "
        "logs stream to ROOT/tensorboard/RUN/ while training runs; at the end TensorBoard serves "
        "ROOT/tensorboard (every run side by side) on 127.0.0.1.",
    )
    p.add_argument("--dataset", default="demo", help="data source (default: %(default)s, generated offline)")
    p.add_argument(
        "--model", default=_DEFAULTS.model, help=f"one of {', '.join(MODELS)} (default: %(default)s)"
    )
    p.add_argument("--epochs", type=int, default=_DEFAULTS.epochs, help="default: %(default)s")
    p.add_argument("--batch-size", type=int, default=_DEFAULTS.batch_size, help="default: %(default)s")
    p.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="square input size in pixels (default: the model's default)",
    )
    p.add_argument(
        "--learning-rate", type=float, default=_DEFAULTS.learning_rate, help="default: %(default)s"
    )
    p.add_argument("--seed", type=int, default=_DEFAULTS.seed, help="default: %(default)s")
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


def _local(args: argparse.Namespace) -> int:
    image_size = args.image_size if args.image_size is not None else model_spec(args.model).default_image_size
    config = TrainingConfig(
        model=args.model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        image_size=image_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
    )
    check_dataset(args.dataset)
    check_config(config)
    root = check_root(args.root)
    run = args.run_name or layout.new_run_name()
    check_run_name(run)

    from trainboard.local_run import run_local

    tensorboard_root = layout.tensorboard_root(root)
    _progress(f"trainboard: run {run}: TensorBoard logs stream to {layout.tensorboard_dir(root, run)}")
    _progress(f"trainboard: watch it live: trainboard tensorboard --logdir {tensorboard_root}")
    result = run_local(root, run, config, dataset=args.dataset, quiet_stdout=args.json)
    _progress(
        f"trainboard: run {run} finished: test accuracy {result.metrics['test_accuracy']:.3f}, "
        f"test loss {result.metrics['test_loss']:.3f}; model at {result.model_uri}"
    )
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
    from trainboard.tensorboard_server import free_port, serve

    port = free_port(port, host)
    url = f"http://{host}:{port}/"
    _progress(f"trainboard: TensorBoard over {logdir} at {url} (Ctrl-C to stop)")
    if run:
        _progress(f"trainboard: this run only: {url}?runFilter={run}#timeseries")
    with contextlib.suppress(KeyboardInterrupt):
        serve(logdir, port, host)


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
    _add_manifests(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except UsageError as e:
        option = "--" + e.field.replace("_", "-")
        parser.exit(2, f"trainboard {args.command}: error: {option}: {e.problem}\n")


if __name__ == "__main__":
    sys.exit(main())
