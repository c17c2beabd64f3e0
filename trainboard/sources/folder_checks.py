"""What a folder source must hold beyond its layout, checked before any work: enough images in each class
for the splits carved out of it, and in each class at least one file with an image's header.

Missing validation / test splits are carved per class (stratified): carve_fractions and carved_count are
the arithmetic prepare_data's plan carves by, so that this check and the carving agree.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

from trainboard.errors import UsageError
from trainboard.sources.folder import ImageFolder, scan_folder
from trainboard.sources.image_headers import MIN_IMAGE_SIDE, usable_size
from trainboard.sources.spec import IMAGE_EXTENSIONS

_HEADER_BATCH = 16  # files whose headers are read at once, in parallel: one round of requests on gs://


def carve_fractions(
    present: set[str], validation_fraction: float, test_fraction: float
) -> list[tuple[str, float, float]]:
    """(split, its fraction, the share of what train holds by then) for each split the source lacks, in
    carving order."""
    carved, left = [], 1.0  # left: the share of the source that train still holds
    for split, fraction in (("test", test_fraction), ("validation", validation_fraction)):
        if split not in present:
            carved.append((split, fraction, fraction / left))
            left -= fraction
    return carved


def carved_count(members: int, share: float) -> int:
    """How many of a class's ``members`` a carved split takes: about ``share`` of them, at least one where
    the class has two or more."""
    return max(1, round(members * share)) if members >= 2 else 0


def _leaves_each_split_one(members: int, carved: list[tuple[str, float, float]]) -> bool:
    for _, _, share in carved:
        taken = carved_count(members, share)
        if not taken:
            return False
        members -= taken
    return members >= 1


def check_folder(uri: str, validation_fraction: float, test_fraction: float) -> ImageFolder:
    """scan_folder, then what would otherwise stop the run after work started: a class too small for each
    carved split and train to get one of its images, a class none of whose files is an image by its
    header."""
    folder = scan_folder(uri)
    train = folder.splits["train"]
    carved = carve_fractions(set(folder.splits), validation_fraction, test_fraction)
    for cls in folder.class_names:
        count = len(train[cls])
        if not _leaves_each_split_one(count, carved):
            needed = next(n for n in itertools.count(1) if _leaves_each_split_one(n, carved))
            splits = " and ".join(f"{split} ({fraction:g})" for split, fraction, _ in carved)
            raise UsageError(
                "dataset",
                f"folder:{uri}: class {cls!r} has {count} image{'s' * (count != 1)}; carving {splits} out "
                f"of each class needs at least {needed} images in every class (one for each split and "
                f"train); add images to it, or add the {' and '.join(s for s, _, _ in carved)} folders",
            )
    for cls in folder.class_names:
        _check_some_image(uri, cls, train[cls])
    return folder


def _check_some_image(uri: str, cls: str, files: list[str]) -> None:
    """Refuse a class none of whose files has the header of an image of MIN_IMAGE_SIDE px or more.

    Bounded: headers only (a few KiB of a local file, one read of an object), read in batches until one is
    an image's, so a healthy class costs one batch. Found before work: files that are not images at all
    (text, HTML saved as .jpg, empty files), headers cut or corrupt, images under the minimum by their
    header. Not found until prepare_data decodes every image: a file whose header is sound but whose data
    is cut or corrupt, and images over max_image_pixels."""
    with ThreadPoolExecutor(_HEADER_BATCH) as pool:  # I/O bound: requests on gs://
        for start in range(0, len(files), _HEADER_BATCH):
            if any(pool.map(usable_size, files[start : start + _HEADER_BATCH])):
                return
    raise UsageError(
        "dataset",
        f"folder:{uri}: class {cls!r} has no usable training images: none of its {len(files)} files has "
        f"the header of a {', '.join(IMAGE_EXTENSIONS)} image of at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} "
        "px; replace them or remove the folder",
    )
