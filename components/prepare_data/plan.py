"""The plan: a source's examples before their images are checked, each with its label, name and split.
Missing validation / test splits are carved out of train here, seeded and stratified, so that every image
can be written into its split as soon as the check lets it through."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from trainboard.errors import UsageError
from trainboard.sources.folder_checks import carve_fractions, carved_count
from trainboard.sources.image_headers import MIN_IMAGE_SIDE
from trainboard.sources.spec import IMAGE_EXTENSIONS, SPLITS


@dataclass
class Example:
    item: str | bytes  # a local path or a gs:// URI (read as it is checked), or encoded image bytes
    label: int
    name: str  # for the card: a path under the folder, or split[index]
    split: str


@dataclass
class Plan:
    examples: list[Example]
    class_names: list[str]
    fingerprint: str = ""  # "" for a folder: it comes from the images' content, as they are read
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> names, found while planning
    notes: list[str] = field(default_factory=list)  # how the source was read, for the card


def labels_by_split(examples: list[Example]) -> dict[str, list[int]]:
    """The labels of each split (every one of SPLITS, empty where there are none)."""
    labels: dict[str, list[int]] = {split: [] for split in SPLITS}
    for example in examples:
        labels[example.split].append(example.label)
    return labels


def complete_splits(plan: Plan, validation_fraction: float, test_fraction: float, seed: int) -> None:
    """Carve the validation / test splits the source does not have out of train: seeded, stratified by
    class; in ``plan``."""
    present = {example.split for example in plan.examples}
    for split, _, share in carve_fractions(present, validation_fraction, test_fraction):
        train = [example for example in plan.examples if example.split == "train"]
        _, carved = stratified_split([example.label for example in train], share, seed, split)
        for i in carved:
            train[i].split = split


def stratified_split(labels: list[int], fraction: float, seed: int, salt: str) -> tuple[list[int], list[int]]:
    """(kept, carved) indices: about ``fraction`` of each class carved (at least one where a class has two
    or more), chosen by a generator seeded with ``seed`` and ``salt``; both lists sorted."""
    rng = np.random.default_rng([seed, zlib.crc32(salt.encode())])
    labels_array = np.asarray(labels)
    carved: list[int] = []
    for cls in np.unique(labels_array):
        members = np.flatnonzero(labels_array == cls)
        carved += rng.permutation(members)[: carved_count(len(members), fraction)].tolist()
    carved_set = set(carved)
    return [i for i in range(len(labels)) if i not in carved_set], sorted(carved)


def check_splits(labels: dict[str, list[int]], folder_classes: list[str], dataset: str) -> None:
    """No split may be empty, and no class folder may have lost all its images (corrupt files). A TFDS
    label space may hold classes a dataset has no examples of: they are the dataset's to define."""
    counts = np.bincount(labels["train"], minlength=len(folder_classes))[: len(folder_classes)]
    empty = [folder_classes[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        raise UsageError(
            "dataset",
            f"{dataset}: class {empty[0]!r} has no usable training images; each must decode as "
            f"{', '.join(IMAGE_EXTENSIONS)} and be at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} px",
        )
    for split in SPLITS:
        if not labels[split]:
            raise UsageError(
                "dataset", f"{dataset}: the {split} split is empty; add images or lower the fractions"
            )
