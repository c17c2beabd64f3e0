"""`trainboard gc`: delete old runs' checkpoints from a root; a dry run unless --delete. Never the
champion's lineage, never a run that may still be training, never anything outside checkpoints/."""

from __future__ import annotations

import argparse

from trainboard.app.cli.output import add_json_option, print_json, progress
from trainboard.app.cli.root_option import add_root_option, no_root
from trainboard.checks import printable
from trainboard.errors import UsageError
from trainboard.roots import check_root, root_exists

DEFAULT_KEEP = 10


def add(commands) -> None:
    p = commands.add_parser(
        "gc",
        help="delete old runs' checkpoints from a root (a dry run unless --delete)",
        description="List (or, with --delete, delete) ROOT/checkpoints/<run>/ of every run that is not one "
        "of the newest N, not of the champion's lineage (champion.json, champion-history/, models/) and "
        "not still training (state.json short of its epochs and not evaluated, or changed in the last hour). "
        "models/, tensorboard/ and the champion record are never touched.",
    )
    add_root_option(p)
    p.add_argument(
        "--keep",
        type=int,
        default=DEFAULT_KEEP,
        metavar="N",
        help=f"keep the checkpoints of the newest N runs (default {DEFAULT_KEEP})",
    )
    p.add_argument("--delete", action="store_true", help="delete them (default: only say what would go)")
    add_json_option(p)
    p.set_defaults(handler=run)


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def run(args: argparse.Namespace) -> int:
    if args.keep < 1:
        raise UsageError(
            "keep", f"must be 1 or more (the newest runs whose checkpoints stay), got {args.keep}"
        )
    root = check_root(args.root)

    from trainboard import layout
    from trainboard.admin.gc import execute, plan
    from trainboard.artifacts.champion import check_records

    if not root_exists(root):
        raise no_root(root, "no checkpoints to clean up")
    check_records(root)  # the lineage that gc keeps is read from them
    result = plan(root, args.keep)
    verb = "deleting" if args.delete else "would delete"
    for r in result.runs:
        checkpoints = layout.checkpoint_dir(root, r.run)
        if args.json:
            print_json(
                {
                    "run": r.run,
                    "checkpoints": checkpoints,
                    "files": r.files,
                    "bytes": r.bytes,
                    "delete": not r.kept_because,
                    "kept_because": r.kept_because or None,
                    "link_to": r.link_to or None,  # a symbolic link: only it goes
                }
            )
            continue
        what = f"{r.files} files, {r.bytes} bytes ({_size(r.bytes)})"
        if r.link_to:  # the link goes, never what it points at
            what = f"a symbolic link to {printable(r.link_to)} (only the link)"
        print(f"{'keep: ' + r.kept_because if r.kept_because else verb}  {r.run}  {checkpoints}  {what}")
    links = sum(1 for r in result.delete if r.link_to)
    total = f"{len(result.delete)} of {len(result.runs)} runs' checkpoints, {result.delete_bytes} bytes"
    if not args.delete:
        also = f" and {links} symbolic link(s)" if links else ""
        progress(f"trainboard gc: would delete {total}{also}; run again with --delete to delete them")
        return 0
    removed = execute(result)
    also = f" and {removed.links} symbolic link(s)" if removed.links else ""
    progress(
        f"trainboard gc: deleted {len(result.delete)} of {len(result.runs)} runs' checkpoints, "
        f"{removed.bytes} bytes in {removed.files} files{also}"
    )
    if removed.left:  # another writer's file appeared, or one could not be deleted
        progress(f"trainboard gc: still holding files after the delete: {', '.join(removed.left)}")
        return 1
    return 0
