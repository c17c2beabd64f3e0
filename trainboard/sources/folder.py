"""The folder source: the team's own images, URI/<class>/<image> or URI/<split>/<class>/<image>, found
by listing the folder (local or gs://). TensorFlow-free: the CLI checks a folder's layout before it starts
anything; prepare_data then reads and decodes the images.

Real folders are messy: hidden entries (.git, .ipynb_checkpoints, .DS_Store) are not listed at all; split
folders go by their usual names too (Train/, val/, testing/: SPLIT_ALIASES), and how a name was read, or
that a top-level folder was left out, becomes a note for the console and the dataset card.
"""

from __future__ import annotations

import difflib
import os
import unicodedata
from dataclasses import dataclass, field

from trainboard import storage
from trainboard.checks import hidden_characters
from trainboard.errors import UsageError
from trainboard.sources.spec import IMAGE_EXTENSIONS, SPLIT_ALIASES, SPLITS


@dataclass
class ImageFolder:
    """The image files of a folder source: {split: {class: [file URIs]}}, sorted, plus what was left out."""

    splits: dict[str, dict[str, list[str]]]
    class_names: list[str]
    not_images: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how the layout was read where it may surprise
    nested: list[str] = field(default_factory=list)  # images in a folder inside a class folder: not read


def _is_image(uri: str) -> bool:
    return uri.lower().endswith(IMAGE_EXTENSIONS)


def _folders(uri: str, files: list[str]) -> set[str]:
    """Relative paths of the folders under ``uri``: those holding files, and on a local disk the empty
    ones too (GCS has no empty folders)."""
    found = {"/".join(f.split("/")[:depth]) for f in files for depth in range(1, f.count("/") + 1)}
    if not storage.is_gcs(uri):
        for parent, names, _ in os.walk(uri, followlinks=True):  # no loop: list_files has looked
            names[:] = [name for name in names if not name.startswith(".")]
            found |= {os.path.relpath(os.path.join(parent, name), uri).replace(os.sep, "/") for name in names}
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


def _check_folder_name(where: str, rel: str) -> None:
    """Folder names become class names, shown in TensorBoard, the KFP UI, the reports and the console: a
    control character (a newline, an escape sequence) would break or forge their lines."""
    control = [c for c in rel if unicodedata.category(c) == "Cc"]
    if control:
        raise UsageError(
            "dataset",
            f"{where}: the folder name {rel!r} holds a control character ({control[0]!r}); rename it: class "
            "names must be printable text",
        )
    hidden = hidden_characters(rel)  # a right-to-left override makes a class name read as another
    if hidden:
        raise UsageError(
            "dataset",
            f"{where}: the folder name {rel!r} holds {', '.join(hidden)}, invisible formatting (such as a "
            "right-to-left mark); rename it: class names must be printable text",
        )


def _check_distinct_names(where: str, folders: set[str]) -> None:
    """Two folders whose names differ only in Unicode form (café with U+00E9, or with e + U+0301 as macOS
    writes it) would be two classes that print the same."""
    seen: dict[str, str] = {}
    for rel in sorted(folders):
        key = unicodedata.normalize("NFC", rel)
        if key in seen:
            raise UsageError(
                "dataset",
                f"{where}: folders {seen[key]!a} and {rel!a} are the same name in two Unicode forms "
                "(composed and decomposed); they would be two classes that look alike: merge them into one",
            )
        seen[key] = rel


def _check_same_form(where: str, split: str, unknown: list[str], class_names: list[str]) -> None:
    """A class of ``split`` that train has not, but in another Unicode form (test/cafe + U+0301 beside
    train/caf\u00e9, from two machines): name the two forms, not "a class train has not"."""
    composed = {unicodedata.normalize("NFC", name): name for name in class_names}
    for name in unknown:
        same = composed.get(unicodedata.normalize("NFC", name))
        if same is not None:
            raise UsageError(
                "dataset",
                f"{where}: class folders train/{same!a} and {split}/{name!a} are the same name in two "
                "Unicode forms (composed and decomposed); rename one so that both are written alike",
            )


def check_gcs_folder(uri: str) -> None:
    """A gs:// folder holds objects: one listing of one object (what objectViewer may do; a bucket's own
    metadata may not be readable), so that a missing bucket is one line, not the client's 404."""
    where = f"folder:{uri}"
    try:
        found = storage.folder_exists(uri)
    except PermissionError as e:
        raise UsageError("dataset", f"{where}: {e}") from None
    if not found:
        bucket, prefix = storage.split_gcs(uri)
        raise UsageError(
            "dataset",
            f"{where}: nothing there: bucket {bucket} does not exist, or holds nothing under "
            f"{prefix or 'its root'}, or these credentials cannot see it; expected "
            f"{uri}/<class>/<image> objects in an existing bucket",
        )


def _unsupported(files: list[str]) -> str:
    """What the files of a class or split that holds no image are, by their names' extensions ("" where
    none has one): a folder of .webp files is not a folder with nothing in it."""
    kinds = sorted({name.rsplit(".", 1)[1].lower() for name in files if "." in name.rsplit("/", 1)[-1]})
    if not kinds:
        return ""
    return (
        f"holds {len(files)} files of which none is a supported image: not a supported image type "
        f"({', '.join(kinds)}); allowed: {', '.join(IMAGE_EXTENSIONS)}"
    )


def _layout(where: str, uri: str, folders: set[str], files: list[str]) -> tuple[dict[str, str], list[str]]:
    """{top-level folder: the split it is} (empty for URI/<class>/<image>) and the notes on how the folder
    was read. A layout by split is one with a train folder under any of its names."""
    top = sorted(f for f in folders if "/" not in f)
    split_of = {name: SPLIT_ALIASES[name.lower()] for name in top if name.lower() in SPLIT_ALIASES}
    if "train" not in split_of.values():
        holding_files = {f.split("/")[0] for f in files if f.count("/") == 1}
        nested = {
            name: split_of.get(name) or _close_split(name)
            for name in top
            if name not in holding_files and any(f.startswith(name + "/") for f in folders)
        }
        if nested:  # a class folder holds images; these look like splits: name the misspelled train first
            name = next((name for name, like in nested.items() if like == "train"), next(iter(nested)))
            like = nested[name]
            hint = f": it looks like the {like} split, but there is no train folder" if like else ""
            raise UsageError(
                "dataset",
                f"{where}: {name}/ holds folders, not images{hint}; expected {uri}/<class>/<image> or "
                f"{uri}/train/<class>/<image> (split folders: {_split_names()})",
            )
        return {}, [
            f"class folder {name}/ is named like the {split} split; for a layout by split add a train/ folder"
            for name, split in split_of.items()
        ]
    names: dict[str, list[str]] = {}
    for name, split in split_of.items():
        names.setdefault(split, []).append(name)
    for split, both in names.items():
        if len(both) > 1:
            raise UsageError(
                "dataset", f"{where}: folders {' and '.join(both)} are both the {split} split; keep one"
            )
    notes = [f"folder {name}/ read as the {split} split" for name, split in split_of.items() if name != split]
    for name in top:
        if name not in split_of:
            like = _close_split(name)
            notes.append(
                f"folder {name}/ is not a split ({_split_names()}) and was left out"
                + (f": did you mean {like}?" if like else "")
            )
    return split_of, notes


def _close_split(name: str) -> str | None:
    """The split a misspelled folder name (tset, trian, validaton) was probably meant to be."""
    close = difflib.get_close_matches(name.lower(), SPLIT_ALIASES, n=1, cutoff=0.75)
    return SPLIT_ALIASES[close[0]] if close else None


def _split_names() -> str:
    return ", ".join(
        f"{split} ({'/'.join(a for a in SPLIT_ALIASES if SPLIT_ALIASES[a] == split)})" for split in SPLITS
    )


def scan_folder(uri: str) -> ImageFolder:
    """Find the classes and images under ``uri``; UsageError when the layout cannot be trained on."""
    where = f"folder:{uri}"
    uris = _listing(where, uri)
    files = list(uris)
    folders = _folders(uri, files)
    for rel in sorted(folders) + files:
        _check_utf8(where, rel)
    for rel in sorted(folders):
        _check_folder_name(where, rel)
    _check_distinct_names(where, folders)
    split_of, notes = _layout(where, uri, folders, files)
    tree = _class_folders(folders, split_of)
    not_images, unsupported = _place_files(tree, uris, split_of)
    class_names = _check_classes(where, uri, tree, unsupported)
    # An image below a class folder's own (tea/more/1.jpg) is nested, not "not an image": say so up front.
    depth = 3 if split_of else 2
    nested = [rel for rel in not_images if rel.count("/") >= depth and _is_image(rel)]
    if nested:
        notes.append(
            f"{len(nested)} image(s) in folders inside class folders (nested, such as {nested[0]}) are not "
            "read: only a class folder's own images are; move them up into their class folder"
        )
    not_images = [rel for rel in not_images if rel not in set(nested)]
    return ImageFolder(tree, class_names, not_images=not_images, notes=notes, nested=nested)


def _listing(where: str, uri: str) -> dict[str, str]:
    """{path relative to ``uri``: URI} of every file under ``uri``, hidden ones left out; UsageError when
    there is none, or a symbolic link loops."""
    if storage.is_gcs(uri):
        check_gcs_folder(uri)
    try:
        listed = storage.list_files(uri, skip_hidden=True)
    except storage.SymlinkLoop as e:
        link = os.path.relpath(e.path, uri)
        raise UsageError(
            "dataset",
            f"{where}: {link} is a symbolic link that leads back to itself or to a folder above it (a loop); "
            "remove it or point it outside the folder",
        ) from None
    if not listed:
        raise UsageError("dataset", f"{where}: no files found; expected {uri}/<class>/<image> files")
    return {f[len(uri) + 1 :]: f for f in listed}


def _class_folders(folders: set[str], split_of: dict[str, str]) -> dict[str, dict[str, list[str]]]:
    """{split: {class: []}}: every class folder of the layout (``split_of``, see _layout), and every split
    folder, even one without classes; folders left out of the layout are not in it."""
    class_depth = 2 if split_of else 1
    tree: dict[str, dict[str, list[str]]] = {}
    for folder in sorted(folders):
        parts = folder.split("/")
        if split_of and parts[0] not in split_of:
            continue
        split = split_of[parts[0]] if split_of else "train"
        if len(parts) == class_depth:
            tree.setdefault(split, {}).setdefault(parts[-1], [])
        elif len(parts) == 1:
            tree.setdefault(split, {})
    return tree


def _place_files(
    tree: dict[str, dict[str, list[str]]], uris: dict[str, str], split_of: dict[str, str]
) -> tuple[list[str], dict[str, dict[str, list[str]]]]:
    """Each image of a class folder added to its class in ``tree``; returns the files that are not (the
    path of each, relative to the folder) and, of those, the ones in class folders ({split: {class:
    [paths]}}: what they are tells why a class has no images)."""
    class_depth = 2 if split_of else 1
    not_images = []
    unsupported: dict[str, dict[str, list[str]]] = {}
    for rel in uris:
        parts = rel.split("/")
        if split_of and len(parts) > 1 and parts[0] not in split_of:
            continue  # in a folder left out (a note says so)
        split = split_of.get(parts[0], "") if split_of else "train"
        in_class = len(parts) == class_depth + 1 and split in tree
        if not in_class or not _is_image(rel):
            not_images.append(rel)
            if in_class:
                unsupported.setdefault(split, {}).setdefault(parts[-2], []).append(rel)
            continue
        tree[split][parts[-2]].append(uris[rel])
    return not_images, unsupported


def _check_classes(
    where: str, uri: str, tree: dict[str, dict[str, list[str]]], unsupported: dict[str, dict[str, list[str]]]
) -> list[str]:
    """The class names (train's folders), sorted; UsageError unless there are two or more, every split
    and class holds images, and no split has a class train has not."""
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
        others = unsupported.get(split, {})
        if not any(classes.values()):
            in_split = [name for names in others.values() for name in names]
            problem = _unsupported(in_split) or "has no images; fill it or remove it"
            raise UsageError("dataset", f"{where}: split {split!r} {problem}")
        empty = [c for c, images in classes.items() if not images]
        if empty:
            problem = _unsupported(others.get(empty[0], [])) or "has no images"
            raise UsageError("dataset", f"{where}: class folder {split}/{empty[0]} {problem}")
        unknown = sorted(set(classes) - set(class_names))
        _check_same_form(where, split, unknown, class_names)
        if unknown:
            raise UsageError(
                "dataset",
                f"{where}: {split} has classes that train has not: {', '.join(unknown)}; allowed: "
                f"{', '.join(class_names)}",
            )
    return class_names
