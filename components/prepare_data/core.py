"""prepare_data: turn a source into the Dataset artifact that train and evaluate read."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import tensorflow as tf
from trainboard.components.prepare_data import demo

from trainboard.config import check_dataset
from trainboard.dataset_artifact import DatasetInfo, write_info, write_split


def prepare_data(dataset: str, output_dir: str, seed: int = 0) -> DatasetInfo:
    """Write ``dataset`` (for now the generated ``demo`` source) into ``output_dir``."""
    check_dataset(dataset)
    splits = demo.generate(seed)
    examples = {}
    for split, (images, labels) in splits.items():
        encoded = [tf.io.encode_png(image).numpy() for image in images]
        examples[split] = write_split(output_dir, split, encoded, labels)
    source = {"dataset": dataset, "seed": seed, "examples": examples, "generator": "demo/1"}
    info = DatasetInfo(
        class_names=list(demo.CLASS_NAMES),
        examples=examples,
        source=dataset,
        fingerprint=hashlib.sha256(json.dumps(source, sort_keys=True).encode()).hexdigest()[:16],
        extra={"image_size": demo.IMAGE_SIZE, "seed": seed},
    )
    write_info(output_dir, info)
    return info


def dataset_card(info: DatasetInfo) -> str:
    """The Markdown card shown in the KFP UI."""
    rows = "\n".join(f"| {split} | {count} |" for split, count in info.examples.items())
    return (
        f"# Dataset `{info.source}`\n\n"
        f"{len(info.class_names)} classes: {', '.join(info.class_names)}\n\n"
        f"| split | examples |\n|---|---|\n{rows}\n\n"
        f"Fingerprint `{info.fingerprint}`\n"
    )


def write_card(info: DatasetInfo, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(dataset_card(info))
