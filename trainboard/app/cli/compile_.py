"""`trainboard compile`: the pipeline YAML for Kubeflow Pipelines or Vertex AI."""

from __future__ import annotations

import argparse
from pathlib import Path

from trainboard.app.cli.output import progress
from trainboard.errors import UsageError


def add(commands) -> None:
    p = commands.add_parser(
        "compile",
        help="compile the pipeline to a KFP v2 YAML for Kubeflow Pipelines or Vertex AI",
        description="Compile the trainboard pipeline into a YAML that `kfp run create -f` takes.",
    )
    p.add_argument("-o", "--output", default="pipeline.yaml", help="output file (default: %(default)s)")
    p.set_defaults(handler=run)


def _check_output(output: Path) -> None:
    if output.is_dir():
        raise UsageError(
            "output", f"{output} is a folder; expected a file name, e.g. {output / 'pipeline.yaml'}"
        )
    if output.parent.exists() and not output.parent.is_dir():
        raise UsageError("output", f"{output.parent} is a file, not a folder; write elsewhere")
    if not output.parent.is_dir():
        raise UsageError("output", f"folder {output.parent} does not exist; create it or write elsewhere")


def run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    try:
        _check_output(output)
    except OSError as e:  # a path the file system cannot even look up: a name too long (ENAMETOOLONG)
        raise UsageError(
            "output", f"cannot use {str(output)[:60]}...: {e.strerror or e}; give -o/--output a shorter path"
        ) from None

    from trainboard.app.cluster.pipeline_spec import compiled_pipeline

    text = compiled_pipeline()
    try:
        output.write_text(text)
    except OSError as e:  # a read-only file system, a folder of another user, /proc: only trying tells
        raise UsageError(
            "output", f"cannot write {output}: {e.strerror or e}; give -o/--output a file you can write"
        ) from None
    progress(f"trainboard: wrote {args.output}")
    return 0
