"""The image every trainboard task runs in on the cluster (Dockerfile, `make image`).

Compile with TRAINBOARD_IMAGE=REGISTRY/IMAGE:TAG or REGISTRY/IMAGE@sha256:DIGEST to use your registry;
kfp.local's SubprocessRunner ignores it and runs the installed package directly.
"""

import os
import re
from importlib.metadata import version

from trainboard.errors import UsageError

DEFAULT_IMAGE = f"ghcr.io/trainboard/trainboard:{version('trainboard')}"  # the tag `make image` pushes
# A pinned reference: a digest, or a tag other than `latest` (a moving tag would let a rerun of the same
# pipeline YAML run different code). A tag has no '/', so a registry port (host:5000/image) is no tag.
_PINNED_IMAGE_RE = re.compile(r"^[^\s@]+(@sha256:[0-9a-f]{64}|:(?!latest$)[\w][\w.-]{0,127})$")


def pinned_image(reference: str) -> str:
    """``reference`` if it pins an image by digest or tag (not `latest`), else UsageError saying how."""
    if not _PINNED_IMAGE_RE.match(reference):
        raise UsageError(
            "TRAINBOARD_IMAGE",
            f"{reference!r} does not pin the component image; use REGISTRY/IMAGE:TAG (not latest) "
            "or REGISTRY/IMAGE@sha256:DIGEST",
        )
    return reference


IMAGE = pinned_image(os.environ.get("TRAINBOARD_IMAGE", DEFAULT_IMAGE))
