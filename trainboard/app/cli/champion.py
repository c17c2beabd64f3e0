"""`trainboard champion show|history|rollback`: the champion record, its append-only history, and a way
back to an earlier champion (itself a recorded promotion, by the same compare-and-swap as promote)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from trainboard.app.cli.output import progress, server_error
from trainboard.app.cli.root_option import add_root_option
from trainboard.errors import UsageError
from trainboard.roots import check_root, root_exists


def add(commands) -> None:
    p = commands.add_parser(
        "champion",
        help="show the champion, list its history, roll back to an earlier one, repair the records",
        description="The champion of a root: ROOT/champion.json, the history of every promotion and "
        "rollback (ROOT/champion-history/), rollback to a run that was champion before, and repair of "
        "records a crash or a hand edit damaged.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser(
        "show",
        help="the champion record, whether models/champion/ is whole, and what is wrong with its model",
    )
    history = actions.add_parser("history", help="every promotion and rollback, oldest first")
    history.add_argument("--json", action="store_true", help="one JSON object a line")
    back = actions.add_parser("rollback", help="make an earlier champion the champion again (recorded)")
    back.add_argument("--to", required=True, metavar="RUN", help="the run to make the champion again")
    back.add_argument("--reason", default="", help="why, for the history")
    repair = actions.add_parser(
        "repair",
        help="move damaged history entries aside, write champion.json again from the history, recopy "
        "models/champion/",
    )
    for action in (show, history, back, repair):
        add_root_option(action)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    root = check_root(args.root)
    if not root_exists(root):
        raise UsageError("root", f"{root} does not exist (or holds nothing): no champion to {args.action}")
    if args.action == "repair":
        from trainboard.admin.rollback import repair

        for line in repair(root) or ["nothing to repair: every record reads, models/champion/ is whole"]:
            progress(f"trainboard champion: {line}")
        return 0

    from trainboard.artifacts.champion import ChampionRecordError, check_records

    check_records(root)
    action = {"show": _show, "history": _history}.get(args.action, _rollback)
    try:
        action(root, args)
    except ChampionRecordError as e:
        return server_error("champion", e)
    return 0


def _show(root: str, args: argparse.Namespace) -> None:
    """The champion record as JSON, with whether models/champion/ is whole and what is wrong with its model
    (null when nothing is); null and a note when there is no champion yet."""
    from trainboard import layout
    from trainboard.artifacts.champion import (
        champion_model_problem,
        matches_manifest,
        read_champion,
        read_manifest,
    )

    record, _ = read_champion(root)
    if record is None:
        progress(f"trainboard champion: {layout.champion_record(root)}: no champion yet")
        print(json.dumps(None))
        return
    folder = layout.champion_model_dir(root)
    manifest = read_manifest(folder)
    whole = manifest is not None and manifest["run"] == record.run
    print(
        json.dumps(
            {
                **asdict(record),
                "serving_copy_whole": whole and matches_manifest(folder, manifest),
                "model_problem": champion_model_problem(root),  # null: its model is there
            }
        )
    )


def _history(root: str, args: argparse.Namespace) -> None:
    """Every promotion and rollback, oldest first: a line a person reads, or (--json) a JSON object."""
    from trainboard.artifacts.champion import read_history

    for entry in read_history(root):
        if args.json:
            print(json.dumps(asdict(entry)))
        else:
            accuracy = entry.metrics.get("test_accuracy", float("nan"))
            print(
                f"{entry.promoted_at}  {entry.action:<8} {entry.run}  "
                f"(before: {entry.previous or '-'})  test_accuracy {accuracy:.4f}  "
                f"by {entry.by or '-'}: {entry.reason}"
            )


def _rollback(root: str, args: argparse.Namespace) -> None:
    """--to's run made the champion again, recorded; its record as JSON."""
    from trainboard.admin.rollback import rollback

    record = rollback(root, args.to, args.reason)
    progress(f"trainboard champion: {record.run} is the champion again ({record.reason})")
    print(json.dumps(asdict(record)))
