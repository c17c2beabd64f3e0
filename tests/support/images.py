"""Image folders for the tests, drawn with the demo generator and encoded as real JPEG / PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from trainboard.sources import demo


def encode(image: np.ndarray, fmt: str) -> bytes:
    return (tf.io.encode_jpeg(image) if fmt == "jpg" else tf.io.encode_png(image)).numpy()


def make_image_folder(
    root: Path, per_class: dict[str, int], classes: list[str] | None = None, seed: int = 0
) -> dict[str, dict[str, int]]:
    """Write ``root/<split>/<class>/<i>.jpg|png`` (``root/<class>/...`` for split ""); returns the counts."""
    rng = np.random.default_rng(seed)
    classes = classes or demo.CLASS_NAMES[:3]
    counts: dict[str, dict[str, int]] = {}
    for split, count in per_class.items():
        for label, cls in enumerate(classes):
            folder = root / split / cls if split else root / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                fmt = "jpg" if i % 2 else "png"
                (folder / f"{i:04d}.{fmt}").write_bytes(encode(demo.draw(rng, label % 4, size=40), fmt))
            counts.setdefault(split, {})[cls] = count
    return counts
