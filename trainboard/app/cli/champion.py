"""`trainboard champion show|history|rollback`: the champion record, its append-only history, and a way
back to an earlier champion (itself a recorded promotion, by the same compare-and-swap as promote)."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import TYPE_CHECKING

from trainboard.app.cli.output import add_json_option, print_fields, print_json, progress, server_error
from trainboard.app.cli.root_option import add_root_option, no_root
from trainboard.checks import printable
from trainboard.roots import check_root, root_exists

if TYPE_CHECKING:
    from trainboard.artifacts.champion import ChampionRecord


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
    back = actions.add_parser("rollback", help="make an earlier champion the champion again (recorded)")
    back.add_argument("--to", required=True, metavar="RUN", help="the run to make the champion again")
    back.add_argument("--reason", default="", help="why, for the history")
    back.add_argument(
        "--model-registry",
        default="",
        metavar="URL",
        help="the Kubeflow Model Registry the promotions registered in: its champion mark moves too "
        "(token: TRAINBOARD_MODEL_REGISTRY_TOKEN)",
    )
    repair = actions.add_parser(
        "repair",
        help="move damaged history entries aside, write champion.json again from the history, recopy "
        "models/champion/",
    )
    for action in (show, history, back):
        add_json_option(action)
    for action in (show, history, back, repair):
        add_root_option(action)
    p.set_defaults(handler=run)


_NOTHING = {
    "show": "no champion to show",
    "history": "no champion history",
    "rollback": "nothing to roll back",
    "repair": "nothing to repair",
}


def run(args: argparse.Namespace) -> int:
    root = check_root(args.root)
    if not root_exists(root):
        raise no_root(root, _NOTHING[args.action])
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
        return server_error(f"champion {args.action}", e)
    return 0


def _fields(record: ChampionRecord) -> list[tuple[str, object]]:
    """The record as a person reads it: a line a field, "-" for one not set."""
    metrics = ", ".join(
        f"{name} {value:.4f}" if isinstance(value, float) else f"{name} {value}"
        for name, value in record.metrics.items()
    )
    fields: list[tuple[str, object]] = [
        ("run", record.run),
        ("model", record.model_uri),
        ("metrics", metrics or "-"),
        ("promoted at", record.promoted_at),
        ("action", record.action),
        ("by", record.by or "-"),
        ("reason", record.reason or "-"),
        ("previous", record.previous or "-"),
    ]
    if record.p_value is not None:  # McNemar's test against the previous champion, where it was counted
        fields.append(("p-value", f"{record.p_value:.4g}"))
    return fields


def _show(root: str, args: argparse.Namespace) -> None:
    """The champion record, whether models/champion/ is whole and what is wrong with its model (--json:
    the record with serving_copy_whole and model_problem, null when nothing is); a note when there is no
    champion yet (--json: null)."""
    from trainboard import layout
    from trainboard.artifacts.champion import (
        champion_model_problem,
        matches_manifest,
        read_champion,
        read_manifest,
    )
    from trainboard.serving_rollout import served_versus_record

    record, _ = read_champion(root)
    if record is None:
        from trainboard.artifacts.champion import read_history

        entries = len(read_history(root))  # champion.json lost: the history still names the champion
        lost = f"missing, though the history names {entries} promotion(s): `trainboard champion repair`"
        said = f"{lost} writes it again from them" if entries else "no champion yet"
        progress(f"trainboard champion: {layout.champion_record(root)}: {said}")
        if args.json:
            print_json(None)
        return
    folder = layout.champion_model_dir(root)
    manifest = read_manifest(folder)
    whole = manifest is not None and manifest["run"] == record.run and matches_manifest(folder, manifest)
    problem = champion_model_problem(root)  # None: its model is there
    served = served_versus_record(root)  # None: serving is off (no InferenceService, or not in a cluster)
    if args.json:
        print_json(
            {**asdict(record), "serving_copy_whole": whole, "model_problem": problem, "served": served}
        )
        return
    serving = f"{folder} is whole" if whole else f"{folder} is not whole: run `trainboard champion repair`"
    fields = [*_fields(record), ("serving copy", serving), ("model problem", problem or "none")]
    print_fields(fields + ([("served", served)] if served else []))


def _history(root: str, args: argparse.Namespace) -> None:
    """Every promotion and rollback, oldest first: a line a person reads, or (--json) a JSON object. JSON
    lines, not one array: the history only grows, and a line an entry streams (`| head` stops early)."""
    from trainboard.artifacts.champion import read_history

    for entry in read_history(root):
        if args.json:
            print_json(asdict(entry))
        else:
            accuracy = entry.metrics.get("test_accuracy", float("nan"))
            line = (
                f"{entry.promoted_at}  {entry.action:<8} {entry.run}  "
                f"(before: {entry.previous or '-'})  test_accuracy {accuracy:.4f}  "
                f"by {entry.by or '-'}: {entry.reason}"
            )
            print(printable(line))


def _rollback(root: str, args: argparse.Namespace) -> None:
    """--to's run made the champion again, recorded; its new record, readable or (--json) as JSON."""
    from trainboard.admin.rollback import rollback
    from trainboard.checks import check_http_url
    from trainboard.model_registry import mark_champion
    from trainboard.serving_rollout import roll_out_champion

    if args.model_registry:
        check_http_url("model_registry", args.model_registry)
    record = rollback(root, args.to, args.reason)
    progress(f"trainboard champion: {record.run} is the champion again ({record.reason})")
    rollout = roll_out_champion(root)  # with manifests/components/serving on, in the cluster
    if rollout.state != "off":
        progress(f"trainboard champion: serving: {rollout.state} {rollout.message or rollout.storage_uri}")
    if args.model_registry:  # the rollback stands whatever the registry says
        problem = mark_champion(args.model_registry, root, record.run, record.previous)
        progress(f"trainboard champion: {problem or f'Model Registry: version {record.run} marked champion'}")
    if args.json:
        print_json(asdict(record))
    else:
        print_fields(_fields(record))
