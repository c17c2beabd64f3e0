"""What `dataset` names: the source spec, parsed and checked without looking at any data."""

from __future__ import annotations

import re
from dataclasses import dataclass

from trainboard import storage
from trainboard.errors import UsageError

SPLITS = ("train", "validation", "test")
# The names read as each split, compared in lower case: a folder's (Train/, val/, testing/) or a TFDS
# split's. "eval" and "holdout" are not among them: teams use them for either held-out split.
SPLIT_ALIASES = {
    **dict.fromkeys(("train", "training"), "train"),
    **dict.fromkeys(("validation", "valid", "val", "dev"), "validation"),
    **dict.fromkeys(("test", "testing"), "test"),
}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
ALLOWED = "demo, tfds:NAME[:CONFIG][@VERSION] or folder:URI (a local folder or gs://BUCKET/PREFIX)"
_TFDS_RE = re.compile(
    r"^(?P<name>[a-z0-9_]+)(?::(?P<config>[A-Za-z0-9_.-]+))?(?:@(?P<version>\d+\.\d+\.\d+))?$"
)


@dataclass(frozen=True)
class Source:
    kind: str  # demo | tfds | folder
    name: str = ""  # tfds dataset name
    config: str | None = None
    version: str | None = None
    uri: str = ""  # folder root


def parse_source(spec: str) -> Source:
    """The source ``spec`` names, or UsageError('dataset', ...) saying what is allowed."""
    if spec == "demo":
        return Source("demo")
    kind, sep, rest = spec.partition(":")
    if kind == "tfds" and sep:
        match = _TFDS_RE.match(rest)
        if not match:
            raise UsageError(
                "dataset",
                f"{spec!r} is not tfds:NAME[:CONFIG][@VERSION] (e.g. tfds:caltech101, tfds:cifar10@3.0.2)",
            )
        return Source("tfds", match["name"], match["config"], match["version"])
    if kind == "folder" and sep:
        try:
            return Source("folder", uri=storage.check_uri(rest))
        except storage.StorageURIError as e:
            raise UsageError("dataset", f"folder:{rest}: {e}") from None
    raise UsageError("dataset", f"unsupported source {spec!r}; allowed: {ALLOWED}")
