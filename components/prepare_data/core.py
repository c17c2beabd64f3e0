"""prepare_data: turn a source (demo, tfds:..., folder:...) into the Dataset artifact train and evaluate read.

plan (sources.py, plan.py) -> check each image (image_check.py) -> write it (trainboard.artifacts.dataset)
-> the card (card.py).

Images are checked (decoded once) but stored as the source's own encoded bytes: no re-encoding, so
preparation runs at about the decode rate, and training resizes on the fly to whichever image size the
model wants (see docs/pipeline.md, "Data preparation"). They stream: each image is checked, encoded into its
record and written as the check pipeline delivers it, so a folder of any size fits in memory.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import google_crc32c
import numpy as np

from trainboard import task_events
from trainboard.artifacts.dataset import DatasetInfo, DatasetWriter, encode_record
from trainboard.artifacts.training_state import data_settings
from trainboard.components.prepare_data.card import SAMPLES, SAMPLES_FILE, sample_grid
from trainboard.components.prepare_data.image_check import PASS_THROUGH, checked_images, to_png
from trainboard.components.prepare_data.plan import (
    MIN_IMAGE_SIDE,
    Plan,
    check_splits,
    complete_splits,
    labels_by_split,
)
from trainboard.components.prepare_data.sources import digest, plan_source
from trainboard.config import DataConfig
from trainboard.config_checks import check_data_config
from trainboard.sources.spec import SPLITS


@dataclass
class Written:
    """What the check let through into the artifact."""

    labels: dict[str, list[int]]  # per split, in the order written
    skipped: dict[str, list[str]]
    checksums: list[int]  # CRC-32C of each example's bytes, 0 where it could not be read
    samples: dict[int, list[bytes]]  # the first training images of each class


def prepare_data(
    data: DataConfig, output_dir: str, seed: int = 0, source_fingerprint: str = ""
) -> DatasetInfo:
    """Write ``data.dataset`` into ``output_dir`` with train / validation / test splits.

    Everything about the input that can be known without decoding the images is checked before anything
    is written; what decoding finds (a class or split left with no usable image) removes what was written.
    """
    source = check_data_config(data)  # the planners check the rest before anything is written
    plan = plan_source(source, seed, data)
    complete_splits(plan, data.validation_fraction, data.test_fraction, seed)
    check_splits(labels_by_split(plan.examples), [], data.dataset)
    with DatasetWriter(output_dir) as writer:
        written = _write_checked(plan, writer, data.max_image_pixels)
        check_splits(written.labels, plan.class_names if source.kind == "folder" else [], data.dataset)
        names = [example.name for example in plan.examples]
        fingerprint = plan.fingerprint or digest(
            json.dumps(list(zip(names, written.checksums, strict=True))).encode()
        )
        info = DatasetInfo(
            class_names=plan.class_names,
            examples={split: len(written.labels[split]) for split in SPLITS},
            source=data.dataset,
            fingerprint=fingerprint,
            extra={
                "image_size_policy": "source size, encoded as in the source; resized in training",
                "data_settings": data_settings(data),  # what train's resume check compares, with:
                "source_fingerprint": source_fingerprint,  # fingerprint_source's: the files as listed
                "seed": seed,
                "per_class": {
                    split: np.bincount(written.labels[split], minlength=len(plan.class_names)).tolist()
                    for split in SPLITS
                },
                "skipped": {reason: len(names) for reason, names in written.skipped.items()},
                "skipped_examples": {reason: names[:5] for reason, names in written.skipped.items()},
                "notes": plan.notes,
            },
        )
        writer.finish(info, {SAMPLES_FILE: sample_grid(written.samples, plan.class_names)})
    return info


def _write_checked(plan: Plan, writer: DatasetWriter, max_pixels: int) -> Written:
    """Check each image and write the usable ones into their split, as the check delivers them (in a
    fixed order: the same source gives the same files). JPEG and PNG are stored as they are; other
    formats (BMP, GIF) as PNG. Images of more than ``max_pixels`` are left out undecoded."""
    examples = plan.examples
    written = Written({split: [] for split in SPLITS}, dict(plan.skipped), [0] * len(examples), {})
    samples_per_class = math.ceil(SAMPLES / max(len(plan.class_names), 1))
    left_out: dict[str, list[int]] = {}
    too_large = f"larger than {max_pixels / 1e6:g} megapixels (max_image_pixels)"
    progress = task_events.Progress("images checked", len(examples))
    checked = checked_images([example.item for example in examples], max_pixels)
    for done, (index, image, size) in enumerate(checked, 1):
        progress.update(done)
        if size is None:
            left_out.setdefault("corrupt or not decodable", []).append(index)
            continue
        if size[0] * size[1] > max_pixels:
            left_out.setdefault(too_large, []).append(index)
            continue
        if not plan.fingerprint:  # the content fingerprint (CRC-32C: a third of SHA-1's cost)
            written.checksums[index] = google_crc32c.value(image)
        if min(size) < MIN_IMAGE_SIDE:
            left_out.setdefault(f"smaller than {MIN_IMAGE_SIDE} px", []).append(index)
            continue
        split, label = examples[index].split, examples[index].label
        image = image if image.startswith(PASS_THROUGH) else to_png(image)
        writer.write(split, encode_record(image, label))
        written.labels[split].append(label)
        if split == "train":
            samples = written.samples.setdefault(label, [])
            if len(samples) < samples_per_class:
                samples.append(image)
    for reason, indices in sorted(left_out.items()):
        written.skipped[reason] = [examples[i].name for i in sorted(indices)]
    return written
