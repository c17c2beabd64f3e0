"""`trainboard schedule create|list|pause|resume|delete`: the experiment's recurring runs on Kubeflow
Pipelines, by name. kfp's own grammar (`kfp recurring-run create|list|enable|disable|delete`), one noun and
its verbs; pause and resume (kfp's disable and enable) say what happens to the executions."""

from __future__ import annotations

import argparse
import shlex
from dataclasses import asdict
from typing import TYPE_CHECKING

from trainboard.app.cli.cluster_options import add_cluster_options, cluster_settings
from trainboard.app.cli.output import add_json_option, print_json, progress, server_error
from trainboard.invocation import command

if TYPE_CHECKING:
    from trainboard.app.cluster.recurring_runs import Schedule
    from trainboard.app.cluster.settings import ClusterSettings

CHANGES = {"pause": "paused", "resume": "resumed", "delete": "deleted"}


def add(commands) -> None:
    p = commands.add_parser(
        "schedule",
        help="create, list, pause, resume or delete the experiment's recurring runs on Kubeflow Pipelines",
        description="The recurring runs of the experiment (--experiment, in --namespace on multi-user "
        "Kubeflow), by name: create one (enabled, one at a time, no catch-up), list them, pause or resume "
        "one (its executions stop or start again), or delete it. The options follow the action.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    _add_create(actions)
    listing = actions.add_parser("list", help="every recurring run: name, status, cron, id")
    add_cluster_options(listing, parameters=False)
    add_json_option(listing)
    for action, words in (
        ("pause", "stop its executions (kfp: disable)"),
        ("resume", "start its executions again (kfp: enable)"),
        ("delete", "delete it"),
    ):
        one = actions.add_parser(action, help=f"{words}: the recurring run NAME")
        one.add_argument("name", metavar="NAME", help="the recurring run's name (schedule create --name)")
        add_cluster_options(one, parameters=False)
    p.set_defaults(handler=run)


def _add_create(actions) -> None:
    p = actions.add_parser(
        "create",
        help="compile the pipeline and create an enabled recurring run (one at a time, no catch-up)",
        description="Compile the pipeline and create an enabled recurring run: max concurrency 1 and no "
        "catch-up unless told otherwise; every execution gets its own run name.",
    )
    add_cluster_options(p)
    p.add_argument("--name", required=True, help="name of the recurring run")
    p.add_argument(
        "--cron",
        required=True,
        help="as the KFP scheduler reads it (robfig/cron v1.2.0): 6 fields, seconds first: second minute "
        "hour day-of-month month day-of-week, e.g. '0 0 3 * * *' (03:00 UTC daily), or @daily, @hourly, "
        "@weekly, @monthly, @yearly, @every 6h",
    )
    p.add_argument("--max-concurrency", type=int, default=1, help="runs at once (default: %(default)s)")
    p.add_argument("--catchup", action="store_true", help="backfill missed intervals (default: no catch-up)")
    p.add_argument(
        "--replace",
        action="store_true",
        help="replace the experiment's schedule of this name (the old one is deleted once the new one "
        "exists); without it an existing name is refused, unless it is identical (then nothing changes)",
    )


def new_spelling(argv: list[str]) -> list[str]:
    """``argv`` with the spellings before `schedule ACTION` made new: `schedule --name N --cron C ...`
    (no action) is `schedule create ...`, `schedules ACTION ...` is `schedule ACTION ...`. They still run,
    for this release, after a one-line notice on stderr naming the new spelling: a crontab or CI job that
    calls them keeps training (a refusal would skip the night's run) while whoever reads its log changes it.
    """
    if argv[:1] == ["schedules"]:
        new, old, now = ["schedule", *argv[1:]], "schedules ACTION", "schedule ACTION"
    elif (
        argv[:1] == ["schedule"] and argv[1:2] and argv[1].startswith("-") and argv[1] not in ("-h", "--help")
    ):
        new, old, now = ["schedule", "create", *argv[1:]], "schedule --name ...", "schedule create --name ..."
    else:
        return argv
    progress(
        f"trainboard: warning: `trainboard {old}` is now `trainboard {now}`; the old spelling is refused "
        "from the next release (docs/cli.md)"
    )
    return new


def run(args: argparse.Namespace) -> int:
    from trainboard.app.cluster import recurring_runs
    from trainboard.app.cluster.connection import ServerError

    settings = cluster_settings(args)
    try:
        if args.action == "create":
            return _create(args, settings)
        if args.action == "list":
            _list(recurring_runs.list_schedules(settings), as_json=args.json)
            return 0
        changed = recurring_runs.change_schedule(settings, args.name, args.action)
    except ServerError as e:
        return server_error(f"schedule {args.action}", e)
    for s in changed:
        print(f"trainboard: schedule {s.name} ({s.recurring_run_id}) {CHANGES[args.action]}")
    return 0


def _create(args: argparse.Namespace, settings: ClusterSettings) -> int:
    from trainboard.app.cluster import recurring_runs

    scheduled = recurring_runs.schedule(
        settings,
        args.param,
        args.name,
        args.cron,
        max_concurrency=args.max_concurrency,
        catchup=args.catchup,
        replace=args.replace,
    )
    for note in scheduled.notes:
        progress(f"trainboard: note: {note}")
    catchup = "catch-up" if args.catchup else "no catch-up"
    what = f"cron '{args.cron}', max concurrency {args.max_concurrency}, {catchup}"
    if not scheduled.unchanged:
        print(f"trainboard: schedule {scheduled.name} enabled: {what}")
    elif scheduled.status == "ENABLED":  # the same command again: nothing created or deleted
        print(f"trainboard: schedule {scheduled.name} already scheduled, unchanged: {what}")
    else:
        print(
            f"trainboard: schedule {scheduled.name} already scheduled, unchanged, and "
            f"{scheduled.status.lower()} ({command('schedule resume ' + shlex.quote(scheduled.name))}): "
            f"{what}"
        )
    print(f"KFP recurring run: {scheduled.url}")
    if settings.tensorboard_url:
        print(f"TensorBoard:       {settings.tensorboard_url}")
    return 0


def _list(schedules: list[Schedule], *, as_json: bool) -> None:
    """A table a person reads, or (--json) every field of each schedule, its parameters included."""
    if as_json:
        for s in schedules:
            print_json(asdict(s))
        return
    print(f"{'NAME':24} {'STATUS':9} {'CRON':20} ID")
    for s in schedules:
        print(f"{s.name:24} {s.status:9} {s.cron:20} {s.recurring_run_id}")
