"""The dataset card: the Markdown the KFP UI shows for prepare_data (source, counts per split and class,
balance, what was skipped, a grid of sample images)."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from trainboard import markdown, storage
from trainboard.artifacts.dataset import DatasetInfo
from trainboard.image_grid import jpeg_bytes, label_grid

SAMPLES_FILE = "samples.jpg"  # beside the dataset: the card's grid, written by prepare_data
SAMPLES = 8  # images in the card's sample grid


def sample_grid(samples: dict[int, list[bytes]], class_names: list[str]) -> bytes:
    """A labelled grid (JPEG) of training images, the first of each class in turn, up to SAMPLES: for the
    dataset card. ``samples``: label -> its first images."""
    picked = [
        (images[turn], label)
        for turn in range(max(map(len, samples.values()), default=0))
        for label, images in sorted(samples.items())
        if turn < len(images)
    ][:SAMPLES]
    decoded = [tf.io.decode_image(image, channels=3, expand_animations=False).numpy() for image, _ in picked]
    return jpeg_bytes(label_grid(decoded, [class_names[label] for _, label in picked]))


def dataset_card(info: DatasetInfo, samples_jpeg: bytes = b"") -> str:
    """The Markdown card shown in the KFP UI: where the data came from, how a folder was read, counts per
    split and class, class balance, what was skipped, and sample images (inline, so the card needs nothing
    else). Names from the data are escaped: a class named `a|b` is one cell."""
    per_class = info.extra["per_class"]
    header = "| class | " + " | ".join(per_class) + " |\n|---|" + "---|" * len(per_class) + "\n"
    rows = "".join(
        f"| {markdown.escape(name)} | " + " | ".join(str(per_class[s][i]) for s in per_class) + " |\n"
        for i, name in enumerate(info.class_names)
    )
    train = [n for n in per_class["train"] if n] or [0]
    skipped = info.extra["skipped"]
    examples = info.extra["skipped_examples"]
    skipped_lines = "".join(
        f"- {count} {reason}: {', '.join(map(markdown.escape, examples[reason]))}"
        f"{' ...' if count > len(examples[reason]) else ''}\n"
        for reason, count in skipped.items()
    )
    notes = "".join(f"- {markdown.escape(note)}\n" for note in info.extra.get("notes", []))
    return (
        f"# Dataset {markdown.escape(info.source)}\n\n"
        + (f"How the folder was read:\n\n{notes}\n" if notes else "")
        + f"{len(info.class_names)} classes; examples: "
        + ", ".join(f"{split} {count}" for split, count in info.examples.items())
        + f".\n\nClass balance (train): smallest class {min(train)}, largest {max(train)} "
        f"(ratio {max(train) / max(min(train), 1):.2f}).\n\n"
        f"{header}{rows}\n"
        f"Skipped files: {sum(skipped.values())}\n{skipped_lines}\n"
        f"Images: {info.extra['image_size_policy']}. Fingerprint `{info.fingerprint}`.\n"
        + (f"\n{markdown.image('Sample training images', samples_jpeg, 'image/jpeg')}\n"
           if samples_jpeg else "")
    )  # fmt: skip


def write_card(info: DatasetInfo, path: str, dataset_dir: str) -> None:
    samples = Path(dataset_dir) / SAMPLES_FILE
    storage.write_bytes(path, dataset_card(info, samples.read_bytes() if samples.exists() else b"").encode())
