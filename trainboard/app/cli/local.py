"""`trainboard local`: the whole pipeline on this machine through kfp.local, then its TensorBoard."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, cast

from trainboard import layout
from trainboard.app.cli.local_request import Request, checked_request
from trainboard.app.cli.local_sweep import add_parallelism_option, report_tournament
from trainboard.app.cli.output import add_json_option, failed_with_log, progress
from trainboard.app.cli.root_option import add_root_option
from trainboard.app.cli.tensorboard import serve
from trainboard.config import DataConfig, PromotionRule, TrainingConfig
from trainboard.errors import stopped_by, stopped_code
from trainboard.invocation import command
from trainboard.mlflow_log import TRACKING_URI_ENV

if TYPE_CHECKING:
    from trainboard.app.local_run import LocalRunResult, TaskOutput

EPOCH_SHOWN = ("loss", "accuracy", "val_accuracy")  # an epoch's line; the log and TensorBoard have the rest


def add(commands) -> None:
    p = commands.add_parser(
        "local",
        help="run the whole pipeline on this machine (kfp.local), then serve its TensorBoard",
        description="Run prepare_data -> train -> evaluate -> promote on this machine through kfp.local. "
        "TensorBoard logs stream to ROOT/tensorboard/RUN/ while training runs; at the end TensorBoard serves "
        "ROOT/tensorboard (every run side by side) on 127.0.0.1.",
    )
    for config in (DataConfig, TrainingConfig, PromotionRule):
        _add_config_options(p, config)
    add_root_option(p)
    p.add_argument(
        "--run-name",
        default=None,
        help="name of this run (default: UTC time + random suffix); an unfinished run of that name resumes "
        "from its last epoch, if started with the same settings and data",
    )
    p.add_argument(
        "--restart",
        action="store_true",
        help="with --run-name: delete that run's checkpoints and logs first, and train it from the start",
    )
    p.add_argument(
        "--serve",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="serve TensorBoard when the run ends (default: serve)",
    )
    p.add_argument(
        "--port", type=int, default=6006, help="TensorBoard port, or the next free one (default: 6006)"
    )
    add_parallelism_option(p)
    p.add_argument(
        "--mlflow-tracking-uri",
        default="",
        metavar="URL",
        help="log the run to this MLflow tracking server as it trains, http(s)://HOST[:PORT] "
        "(default: $MLFLOW_TRACKING_URI; neither: no MLflow)",
    )
    add_json_option(p)  # the run's result, the last line of stdout
    p.add_argument(
        "--verbose",
        action="store_true",
        help="stream kfp.local's, TensorFlow's and every step's own logs here instead of to the run's log "
        "file (ROOT/logs/RUN.log)",
    )
    p.set_defaults(handler=run)


def _add_config_options(p: argparse.ArgumentParser, config: type) -> None:
    """One option per field of the dataclass ``config``, with its type, default, choices and help."""
    for option in fields(config):
        flag = "--" + option.name.replace("_", "-")
        help = option.metadata["help"]
        if option.name == "image_size":  # the model's own unless given
            p.add_argument(flag, type=int, default=None, help=help + " (default: the model's own)")
        elif option.type == "bool":
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=option.default, help=help)
        else:
            # The config modules use `from __future__ import annotations`: a field's type is its name.
            kind = {"int": int, "float": float, "str": str}[cast(str, option.type)]
            choices = option.metadata["choices"] or None
            p.add_argument(
                flag, type=kind, default=option.default, choices=choices, help=help + _shown(option.default)
            )


def _shown(default: object) -> str:
    """The default as the help shows it: none where it is empty (the help says what empty means), a
    float as a person writes it (10, not 10.0; 0.003 and 1e-05 as they are)."""
    if default == "":
        return ""
    text = f"{default:g}" if isinstance(default, float) else str(default)
    return f" (default: {text})".replace("%", "%%")


def _delete_run(root: str, run: str) -> None:
    """The run's checkpoints, then its logs: a kill in between leaves logs without a commit, which the
    next start deletes too (roll_back_logs)."""
    from trainboard import storage

    for folder in (layout.checkpoint_dir(root, run), layout.tensorboard_dir(root, run)):
        storage.delete_folder(folder)
    progress(f"trainboard: run {run}: its checkpoints and logs deleted; training it from the start")


def run(args: argparse.Namespace) -> int:
    request = checked_request(args)
    if request.mlflow_tracking_uri:  # kfp.local's tasks share this environment: each step logs there
        os.environ[TRACKING_URI_ENV] = request.mlflow_tracking_uri
    result = _run_holding_its_name(args, request)
    if isinstance(result, int):
        return result
    _report(request.run, result, as_json=args.json)
    if args.serve:  # TensorBoard's own output in the run's log too (or here with --verbose)
        from trainboard.app.local_run import log_path

        log = None if args.verbose else log_path(request.root, request.run)
        tensorboard_root = layout.tensorboard_root(request.root)
        return serve(
            "local",
            tensorboard_root,
            args.port,
            run=request.run,
            log=log,
            champion=result.champion,
            trials=result.trials,
        )
    return 0


def _run_holding_its_name(args: argparse.Namespace, request: Request) -> LocalRunResult | int:
    """The pipeline run through kfp.local, its result; the exit code when a step failed or Ctrl-C
    stopped it. The run's name is this command's until it ends (exit 2 here when another run holds it);
    its tasks, kfp.local's child processes, hold it through the environment."""
    from trainboard.app.local_run import TaskFailed, log_path, run_local
    from trainboard.artifacts.lease import held

    root, run_name = request.root, request.run
    holder = f"local-{secrets.token_hex(4)}"
    with held(root, run_name, holder, release_at_end=True, export=True):
        if args.restart:
            _delete_run(root, run_name)
        for note in request.notes:  # also in the dataset card
            progress(f"trainboard: {request.data.dataset}: {note}")
        log = log_path(root, run_name)
        where = "streamed here (--verbose)" if args.verbose else f"in {log}"
        progress(f"trainboard: run {run_name}: the logs of every step {where}")
        watch = command(f"tensorboard --logdir {shlex.quote(layout.tensorboard_root(root))}")
        progress(f"trainboard: watch it live: {watch}")
        if request.same_as:  # a rerun of `make run` as it is: say so before the minutes it takes
            progress(
                f"trainboard: run {run_name}: the same settings, data and seed as champion "
                f"{request.same_as}: it trains the same model again (equal, not better); to train another, "
                "change --seed or a setting"
            )
        console = RunConsole(sys.stderr)
        try:
            with _task_output(args, log, console) as output:
                return run_local(
                    root,
                    run_name,
                    data=request.data,
                    config=request.config,
                    rule=request.rule,
                    output=output,
                    parallelism=args.parallelism,
                )
        except TaskFailed as e:
            console.end_line()
            return failed_with_log("local", str(e), e.tail, None if args.verbose else log)
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (trainboard.stopping)
            console.end_line()
            print(
                f"trainboard local: {stopped_by(stop)}; to resume run {run_name} from its last completed "
                f"epoch, run the same command with --run-name {run_name}",
                file=sys.stderr,
            )
            return stopped_code(stop)


def _report(run: str, result: LocalRunResult, *, as_json: bool) -> None:
    """The test metrics of ``run``, the promotion decision and where its records are; with ``as_json`` the
    result as JSON, the last line of stdout."""
    progress(
        f"trainboard: run {run}: test accuracy {result.metrics['test_accuracy']:.3f}, "
        f"test loss {result.metrics['test_loss']:.3f}"
    )
    if result.promoted:
        progress(f"trainboard: promoted, now the champion: {result.reason}")
    else:
        progress(
            f"trainboard: not promoted, the champion is still {result.champion or 'none'}: {result.reason}"
        )
    progress(f"trainboard: dataset card:     {result.card}")
    progress(f"trainboard: promotion report: {result.report} (both Markdown: open them in a viewer)")
    progress(f"trainboard: model:            {result.model_uri} (this run's)")
    if result.promoted:
        progress(f"trainboard: champion's model: {result.champion_model_uri} (a copy of this run's)")
    report_tournament(result)
    if result.champion:  # `trainboard serve` prints a curl to try, and follows promotions
        progress(f"trainboard: serve the champion: {command(f'serve --root {shlex.quote(result.root)}')}")
    if as_json:
        print(json.dumps(result.as_json()), flush=True)


@contextlib.contextmanager
def _task_output(args: argparse.Namespace, log: Path, console: RunConsole) -> Iterator[TaskOutput]:
    """Where kfp.local's output goes: the run's log file, shown as the console's lines; with --verbose,
    the terminal as it comes (stderr with --json: stdout is for the result)."""
    from trainboard.app.local_run import TaskOutput

    if args.verbose:
        yield TaskOutput(sys.stderr if args.json else sys.stdout, lambda event: None)
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8", buffering=1) as sink:  # line by line, for `tail -f`
        yield TaskOutput(sink, console.on_event)


class RunConsole:
    """A local run as a person follows it: a line as each step starts and ends, with its time; a line per
    epoch; data preparation's progress in place on a terminal."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.in_place = stream.isatty()  # a log or a pipe gets whole lines only
        self.started: dict[str, float] = {}
        self.progress: dict[str, str] = {}
        self.partial = False

    def on_event(self, event: dict) -> None:
        task = event["task"]
        kind = event["kind"]
        if kind == "task_started":
            self.started[task] = time.monotonic()
            self.line(f"{task}: started at {time.strftime('%H:%M:%S')}")
        elif kind == "progress":
            self.progress[task] = f"{event['done']}/{event['total']} {event['unit']}"
            if self.in_place:
                self.end_line()
                self.stream.write(f"trainboard: {task}: {self.progress[task]}")
                self.stream.flush()
                self.partial = True
        elif kind == "epoch":
            metrics = ", ".join(f"{name} {event[name]:.4f}" for name in EPOCH_SHOWN if name in event)
            self.line(
                f"{task}: epoch {event['epoch']}/{event['epochs']}: {metrics} ({event['seconds']:.1f} s)"
            )
        elif kind == "workers":
            self.line(f"{task}: {event['workers']} workers, {event['how']}")
        elif kind == "task_finished":
            seconds = time.monotonic() - self.started.get(task, time.monotonic())
            done = f" ({self.progress[task]})" if task in self.progress else ""
            self.line(f"{task}: {'done' if event['ok'] else 'failed'} in {seconds:.1f} s{done}")

    def line(self, text: str) -> None:
        self.end_line()
        self.stream.write(f"trainboard: {text}\n")
        self.stream.flush()

    def end_line(self) -> None:
        """Clear an in-place progress line before a whole line."""
        if self.partial:
            self.stream.write("\r\x1b[K")
            self.partial = False
