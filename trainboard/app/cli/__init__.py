"""trainboard: train Keras image classifiers on Kubeflow Pipelines and watch them learn, live.

One module per command (local, compile, tensorboard, serve, submit, schedule, manifests, weights, champion,
gc), each with ``add(commands)`` that declares its options and a handler that runs it. Starts fast and needs
no TensorFlow: each command imports what it uses when it runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib.metadata import version

from trainboard.app.cli import (
    champion,
    compile_,
    doctor,
    gc,
    local,
    manifests,
    schedule,
    serve,
    submit,
    tensorboard,
    weights,
)
from trainboard.app.cli.tensorflow_logs import quiet_tensorflow
from trainboard.checks import printable
from trainboard.errors import OneLineParser, UsageError, stopped_by, stopped_code
from trainboard.stopping import sigterm_as_ctrl_c

COMMANDS = (local, compile_, tensorboard, serve, submit, schedule, doctor, manifests, weights, champion, gc)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="trainboard",
        description="Train Keras image classifiers on Kubeflow Pipelines and watch them learn, live, in one "
        "shared TensorBoard.",
        epilog="Start with `trainboard local`: the whole pipeline on this machine, on generated demo data.",
    )
    parser.add_argument("--version", action="version", version=f"trainboard {version('trainboard')}")
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    for command in COMMANDS:
        command.add(commands)
    return parser


def _chosen(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)command's own parser that ``args`` were parsed by: `trainboard champion show`'s for
    `trainboard champion show ...`, so that its errors name it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and getattr(args, action.dest, None):
            return _chosen(action.choices[getattr(args, action.dest)], args)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = schedule.new_spelling(sys.argv[1:] if argv is None else argv)  # the old spellings, one release
    args, unknown = parser.parse_known_args(argv)
    command = _chosen(parser, args)
    if unknown:  # argparse's parse_args says these as `trainboard: error:`, not naming the command
        command.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:  # `trainboard` alone: what it can do, not an error
        parser.print_help()
        return 0
    if not getattr(args, "verbose", False):
        quiet_tensorflow()
    # SIGTERM as Ctrl-C: the lease given back, the resume hint, the processes below stopped.
    with sigterm_as_ctrl_c():
        return _handled(command, args)


def _handled(command: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """The command run, a user's mistake or a stop said in one line, not a traceback."""
    try:
        return args.handler(args)
    except UsageError as e:
        # An environment variable (TRAINBOARD_IMAGE) or a positional (MODEL) is named as it is; a field by
        # its option. A file (champion.json) is named as it is.
        option = e.field if e.field.isupper() or "." in e.field else "--" + e.field.replace("_", "-")
        # What a file or a server said is in it: escaped, one line, whatever it held.
        command.exit(2, f"{command.prog}: error: {printable(option)}: {printable(e.problem)}\n")
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM anywhere else (a check, a wait): no traceback
        command.exit(stopped_code(e), f"{command.prog}: {stopped_by(e)}\n")
    except BrokenPipeError:  # `trainboard champion history | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141  # 128 + SIGPIPE, as a shell reports it


if __name__ == "__main__":
    sys.exit(main())
