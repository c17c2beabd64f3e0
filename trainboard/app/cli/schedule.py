"""`trainboard schedule`: an enabled recurring run on Kubeflow Pipelines (one at a time, no catch-up)."""

from __future__ import annotations

import argparse
import shlex

from trainboard.app.cli.cluster_options import add_cluster_options, cluster_settings
from trainboard.app.cli.output import progress, server_error
from trainboard.invocation import command


def add(commands) -> None:
    p = commands.add_parser(
        "schedule",
        help="create an enabled recurring run on Kubeflow Pipelines (one at a time, no catch-up)",
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
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from trainboard.app.cluster import recurring_runs
    from trainboard.app.cluster.connection import ServerError

    settings = cluster_settings(args)
    try:
        scheduled = recurring_runs.schedule(
            settings,
            args.param,
            args.name,
            args.cron,
            max_concurrency=args.max_concurrency,
            catchup=args.catchup,
            replace=args.replace,
        )
    except ServerError as e:
        return server_error("schedule", e)
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
            f"{scheduled.status.lower()} ({command('schedules resume ' + shlex.quote(scheduled.name))}): "
            f"{what}"
        )
    print(f"KFP recurring run: {scheduled.url}")
    if settings.tensorboard_url:
        print(f"TensorBoard:       {settings.tensorboard_url}")
    return 0
