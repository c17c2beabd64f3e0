"""`trainboard compile`: the pipeline YAML for Kubeflow Pipelines or Vertex AI."""

from __future__ import annotations

import argparse
from pathlib import Path

from trainboard.cli.output import progress
from trainboard.errors import UsageError


def add(commands) -> None:
    p = commands.add_parser(
        "compile",
        help="compile the pipeline to a KFP v2 YAML for Kubeflow Pipelines or Vertex AI",
        description="Compile the trainboard pipeline into a YAML that `kfp run create -f` takes.",
    )
    p.add_argument("-o", "--output", default="pipeline.yaml", help="output file (default: %(default)s)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if output.is_dir():
        raise UsageError(
            "output", f"{output} is a folder; expected a file name, e.g. {output / 'pipeline.yaml'}"
        )
    if not output.parent.is_dir():
        raise UsageError("output", f"folder {output.parent} does not exist; create it or write elsewhere")

    from trainboard.cluster.pipeline_spec import compiled_pipeline

    Path(args.output).write_text(compiled_pipeline())
    progress(f"trainboard: wrote {args.output}")
    return 0
