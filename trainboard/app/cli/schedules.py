"""`trainboard schedules`: the experiment's recurring runs, listed, paused, resumed or deleted by name."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import TYPE_CHECKING

from trainboard.app.cli.cluster_options import add_cluster_options, cluster_settings
from trainboard.app.cli.output import add_json_option, print_json, server_error

if TYPE_CHECKING:
    from trainboard.app.cluster.recurring_runs import Schedule


def add(commands) -> None:
    p = commands.add_parser(
        "schedules",
        help="list, pause, resume or delete the experiment's recurring runs",
        description="Manage the recurring runs of the experiment (--experiment, in --namespace on "
        "multi-user Kubeflow) by name: list them, pause or resume one (its executions stop or start again), "
        "or delete it.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every recurring run: name, status, cron, id")
    add_cluster_options(listing, parameters=False)
    add_json_option(listing)
    for action, words in (
        ("pause", "stop its executions (disable)"),
        ("resume", "start its executions again (enable)"),
        ("delete", "delete it"),
    ):
        one = actions.add_parser(action, help=f"{words}: the recurring run NAME")
        one.add_argument("name", metavar="NAME", help="the recurring run's name (trainboard schedule --name)")
        add_cluster_options(one, parameters=False)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from trainboard.app.cluster import recurring_runs
    from trainboard.app.cluster.connection import ServerError

    settings = cluster_settings(args)
    try:
        if args.action == "list":
            _list(recurring_runs.list_schedules(settings), as_json=args.json)
            return 0
        changed = recurring_runs.change_schedule(settings, args.name, args.action)
    except ServerError as e:
        return server_error(f"schedules {args.action}", e)
    done = {"pause": "paused", "resume": "resumed", "delete": "deleted"}[args.action]
    for s in changed:
        print(f"trainboard: schedule {s.name} ({s.recurring_run_id}) {done}")
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
