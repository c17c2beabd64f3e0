"""Where a backbone's starting weights come from: ``none``, ``imagenet`` or a weights file.

``imagenet`` is Keras's own download, once per root: the backbone's weights are saved to
``<root>/weights/<model>-<image size>-notop.weights.h5`` with their SHA-256 beside them (written last: a
file without its checksum is an unfinished copy), and every later run, offline clusters included, reads
that copy. ``trainboard weights fetch`` fills the cache from a machine with network.

TensorFlow-free to import (the CLI checks a value here first); what builds a backbone imports Keras when
it runs.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import socket
import tempfile
import warnings
from pathlib import Path

from trainboard import layout, storage
from trainboard.errors import UsageError
from trainboard.invocation import command
from trainboard.roots import checked_uri

NONE, IMAGENET = "none", "imagenet"
# What Keras's load_weights reads: .weights.h5 (Keras 3's format), .h5 (Keras 2's, as Keras downloads).
WEIGHTS_SUFFIX = ".h5"
# Set on a machine without network: an `imagenet` start with no cached copy is refused at once.
OFFLINE_ENV = "TRAINBOARD_OFFLINE"
# Where keras.applications downloads ImageNet weights from (keras/src/applications/*.py, release 3.15.1).
KERAS_WEIGHTS_HOST = "storage.googleapis.com"


def check_weights(weights: str, model: str) -> None:
    """The value's form: none, imagenet, or the URI of a .h5 file; a pretrained start needs a backbone."""
    if weights in (NONE, IMAGENET):
        pass
    elif not weights.strip().endswith(WEIGHTS_SUFFIX):
        raise UsageError(
            "weights",
            f"{weights!r} is not none, imagenet, or a weights file (a .h5 or .weights.h5 path or gs:// URI)",
        )
    else:
        checked_uri(weights, "weights")
    if weights != NONE and model == "small_cnn":
        raise UsageError("weights", "small_cnn has no pretrained weights; use it with --weights none")


def checksum_uri(uri: str) -> str:
    return uri + ".sha256"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_cached(root: str, model: str, image_size: int) -> bool:
    return storage.exists(checksum_uri(layout.imagenet_weights(root, model, image_size)))


def online(timeout: float = 3.0, host: str = KERAS_WEIGHTS_HOST) -> bool:
    """Whether ``host`` (Keras's weights host unless given) answers here (a TCP connect on 443), unless
    OFFLINE_ENV says not to try."""
    if os.environ.get(OFFLINE_ENV):
        return False
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def fetch_command(model: str, image_size: int, root: str) -> str:
    return command(f"weights fetch {model} --image-size {image_size} --root {shlex.quote(root)}")


def _offline_refusal(root: str, model: str, image_size: int, reason: str) -> UsageError:
    return UsageError(
        "weights",
        f"imagenet: {reason}, and {layout.imagenet_weights(root, model, image_size)} has no cached copy; "
        f"seed the cache on a machine with network: {fetch_command(model, image_size, root)}",
    )


def check_imagenet_available(root: str, model: str, image_size: int) -> None:
    """Before any work: an imagenet start needs the cached copy or the network to make it."""
    if not is_cached(root, model, image_size) and not online():
        raise _offline_refusal(root, model, image_size, f"{KERAS_WEIGHTS_HOST} cannot be reached from here")


def check_available(weights: str, model: str, image_size: int, root: str) -> None:
    """Before a run on this machine starts: the weights can be had, and a file fits ``model``."""
    if weights == IMAGENET:
        check_imagenet_available(root, model, image_size)
    elif weights != NONE:
        with tempfile.TemporaryDirectory(prefix="trainboard-weights-") as scratch:
            check_weights_file(_copy_file(weights, Path(scratch)), weights, model, image_size)


def _copy_file(uri: str, scratch: Path) -> Path:
    if not storage.exists(uri):
        raise UsageError("weights", f"{uri} does not exist")
    local = scratch / Path(uri).name
    local.write_bytes(storage.read_bytes(uri))
    return local


class DownloadFailed(RuntimeError):
    """Keras could not download the ImageNet weights (no network, a proxy, the host down)."""


def fetch_imagenet(model: str, image_size: int, root: str) -> str:
    """Keras's ImageNet weights of ``model``'s backbone, downloaded once and cached under the root;
    returns the cache's URI. DownloadFailed when Keras's download fails."""
    from trainboard.backbones import backbone

    uri = layout.imagenet_weights(root, model, image_size)
    with tempfile.TemporaryDirectory(prefix="trainboard-weights-") as scratch:
        local = Path(scratch) / Path(uri).name
        try:
            backbone(model, image_size, weights=IMAGENET).save_weights(local)
        except Exception as e:  # Keras's get_file: "URL fetch failure on ...", an OSError, ...
            raise DownloadFailed(
                f"downloading {model}'s ImageNet weights failed ({e}); this machine must reach "
                f"{KERAS_WEIGHTS_HOST}"
            ) from None
        storage.upload_file(local, uri)
        storage.write_bytes(checksum_uri(uri), _sha256(local).encode())
    return uri


def _cached_imagenet(model: str, image_size: int, root: str, scratch: Path) -> Path:
    """The root's cached ImageNet weights, copied into ``scratch`` and checked against their SHA-256;
    made first (Keras's download) when the cache is empty."""
    uri = layout.imagenet_weights(root, model, image_size)
    if not is_cached(root, model, image_size):
        if not online():
            raise _offline_refusal(root, model, image_size, "no network here")
        try:
            fetch_imagenet(model, image_size, root)
        except DownloadFailed as e:
            raise _offline_refusal(root, model, image_size, str(e)) from None
    local = scratch / Path(uri).name
    local.write_bytes(storage.read_bytes(uri))
    expected = storage.read_bytes(checksum_uri(uri)).decode().strip()
    if _sha256(local) != expected:
        raise UsageError(
            "weights",
            f"imagenet: {uri} does not match its checksum {checksum_uri(uri)} (a damaged copy); delete both "
            f"and run again, or fetch them anew: {command('weights fetch')}",
        )
    return local


def local_weights(weights: str, model: str, image_size: int, root: str, *, scratch: Path) -> Path | None:
    """The weights file to start ``model`` from, copied into ``scratch``; None for an untrained start.
    An imagenet start reads the root's cache, filling it first when it is empty."""
    if weights == NONE:
        return None
    if weights == IMAGENET:
        local = _cached_imagenet(model, image_size, root, scratch)
    else:
        local = _copy_file(weights, scratch)
    check_weights_file(local, weights, model, image_size)
    return local


def check_weights_file(path: Path, weights: str, model: str, image_size: int) -> None:
    """UsageError unless ``path`` loads into ``model``'s backbone (a file of another architecture does not:
    Keras's message names the layer or shape that differs)."""
    from trainboard.backbones import backbone

    try:
        # Keras warns once per layer it skips, then raises: the refusal below says it in one line. A
        # load that succeeds gives its warnings back.
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            backbone(model, image_size, weights=str(path))
        for warning in said:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    except (ValueError, OSError, KeyError) as e:
        keras_says = " ".join(str(e).split())[:300]  # one line: Keras's message may run over several
        raise UsageError(
            "weights", f"{weights} does not match {model} at {image_size} px: {keras_says}"
        ) from None
