"""`trainboard weights fetch`: seed the root's ImageNet weights cache (for clusters without network)."""

from __future__ import annotations

import argparse

from trainboard.app.cli.output import add_json_option, print_fields, print_json, progress, server_error
from trainboard.app.cli.root_option import add_root_option
from trainboard.config import MODELS, model_spec
from trainboard.config_checks import check_model
from trainboard.errors import UsageError
from trainboard.roots import check_root

PRETRAINED = [name for name in MODELS if name != "small_cnn"]


def add(commands) -> None:
    p = commands.add_parser(
        "weights",
        help="seed <root>/weights/ with ImageNet backbone weights, for runs that cannot download",
        description="Download a backbone's ImageNet weights (Keras's own download) on this machine and "
        "cache them under ROOT/weights/ with their SHA-256: runs with weights=imagenet read that copy, "
        "also on a cluster without network. Needs TensorFlow (pip install 'trainboard[train]').",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    fetch = actions.add_parser("fetch", help="download and cache one backbone's weights")
    fetch.add_argument("model", help=f"the architecture: {', '.join(PRETRAINED)}")
    fetch.add_argument(
        "--image-size", type=int, default=None, help="the runs' image size (default: the model's own)"
    )
    add_root_option(fetch)
    add_json_option(fetch)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.model not in PRETRAINED:
        raise UsageError(
            "MODEL", f"{args.model!r} has no ImageNet weights; choose one of: {', '.join(PRETRAINED)}"
        )
    image_size = args.image_size or model_spec(args.model).default_image_size
    check_model(args.model, image_size)
    root = check_root(args.root, will_write=True)

    from trainboard import layout
    from trainboard.weights import KERAS_WEIGHTS_HOST, DownloadFailed, fetch_imagenet, is_cached, online

    uri = layout.imagenet_weights(root, args.model, image_size)
    if is_cached(root, args.model, image_size):
        progress(f"trainboard weights: {uri} is cached already")
    elif not online():  # one line, before the seconds TensorFlow takes to load
        return server_error(
            "weights fetch",
            f"{KERAS_WEIGHTS_HOST} cannot be reached from here (no network, or TRAINBOARD_OFFLINE is set), "
            f"and {uri} has no cached copy; run this on a machine with network, --root naming the same root",
        )
    else:
        progress(f"trainboard weights: downloading {args.model}'s ImageNet weights (Keras) ...")
        try:
            fetch_imagenet(args.model, image_size, root)
        except DownloadFailed as e:
            return server_error("weights fetch", e)
        progress(f"trainboard weights: cached {uri}")
    cached = {"model": args.model, "image_size": image_size, "uri": uri}
    if args.json:
        print_json(cached)
    else:
        print_fields([("model", args.model), ("image size", image_size), ("cached at", uri)])
    return 0
