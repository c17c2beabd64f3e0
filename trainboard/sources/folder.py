"""The folder source: the team's own images, URI/<class>/<image> or URI/<split>/<class>/<image>, found
by listing the folder (local or gs://). TensorFlow-free: the CLI checks a folder's layout before it starts
anything; prepare_data then reads and decodes the images."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from trainboard import storage
from trainboard.errors import UsageError
from trainboard.sources.spec import IMAGE_EXTENSIONS, SPLITS


@dataclass
class ImageFolder:
    """The image files of a folder source: {split: {class: [file URIs]}}, sorted, plus what was left out."""

    splits: dict[str, dict[str, list[str]]]
    class_names: list[str]
    not_images: list[str] = field(default_factory=list)


def _is_image(uri: str) -> bool:
    return uri.lower().endswith(IMAGE_EXTENSIONS)


def _folders(uri: str, files: list[str]) -> set[str]:
    """Relative paths of the folders under ``uri``: those holding files, and on a local disk the empty
    ones too (GCS has no empty folders)."""
    found = {"/".join(f.split("/")[:depth]) for f in files for depth in range(1, f.count("/") + 1)}
    if not storage.is_gcs(uri):
        found |= {
            os.path.relpath(os.path.join(parent, name), uri).replace(os.sep, "/")
            for parent, names, _ in os.walk(uri, followlinks=True)
            for name in names
        }
    return found


def _check_utf8(where: str, rel: str) -> None:
    """A local name that is not UTF-8 (a str with surrogate escapes) cannot become a class name or go
    into the card: name it, so that it can be renamed, instead of failing later or silently skipping it."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(
            "dataset",
            f"{where}: the name {os.fsencode(rel)!r} is not UTF-8; rename it: folder and file names must be "
            "UTF-8 text (class names come from them)",
        ) from None


def scan_folder(uri: str) -> ImageFolder:
    """Find the classes and images under ``uri``; UsageError when the layout cannot be trained on."""
    where = f"folder:{uri}"
    uris = {f[len(uri) + 1 :]: f for f in storage.list_files(uri)}
    files = list(uris)
    if not files:
        raise UsageError("dataset", f"{where}: no files found; expected {uri}/<class>/<image> files")
    folders = _folders(uri, files)
    for rel in sorted(folders) + files:
        _check_utf8(where, rel)
    split_layout = "train" in folders
    class_depth = 2 if split_layout else 1
    tree: dict[str, dict[str, list[str]]] = {}
    for folder in sorted(folders):
        parts = folder.split("/")
        if split_layout and parts[0] not in SPLITS:
            continue
        split = parts[0] if split_layout else "train"
        if len(parts) == class_depth:
            tree.setdefault(split, {}).setdefault(parts[-1], [])
        elif len(parts) == 1:
            tree.setdefault(split, {})
    not_images = []
    for rel in files:
        parts = rel.split("/")
        split = parts[0] if split_layout else "train"
        if len(parts) != class_depth + 1 or split not in tree or not _is_image(rel):
            not_images.append(rel)
            continue
        tree[split][parts[-2]].append(uris[rel])

    class_names = sorted(tree.get("train", {}))
    if not class_names:
        raise UsageError(
            "dataset",
            f"{where}: no class folders; expected {uri}/<class>/<image> or {uri}/train/<class>/<image>",
        )
    if len(class_names) < 2:
        raise UsageError(
            "dataset", f"{where}: only one class ({class_names[0]}); a classifier needs at least 2"
        )
    for split, classes in tree.items():
        if not any(classes.values()):
            raise UsageError("dataset", f"{where}: split {split!r} has no images; fill it or remove it")
        empty = [c for c, images in classes.items() if not images]
        if empty:
            raise UsageError("dataset", f"{where}: class folder {split}/{empty[0]} has no images")
        unknown = sorted(set(classes) - set(class_names))
        if unknown:
            raise UsageError(
                "dataset",
                f"{where}: {split} has classes that train has not: {', '.join(unknown)}; allowed: "
                f"{', '.join(class_names)}",
            )
    return ImageFolder(splits=tree, class_names=class_names, not_images=not_images)
