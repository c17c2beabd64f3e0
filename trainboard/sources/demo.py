"""The `demo` source: a small, learnable image dataset drawn offline from a seed.

Four classes of shapes with random colours, position, size and pixel noise. Same seed, same images.
"""

from __future__ import annotations

import numpy as np

CLASS_NAMES = ["circle", "square", "triangle", "cross"]
IMAGE_SIZE = 64
DEFAULT_EXAMPLES = {"train": 960, "validation": 160, "test": 160}


def _mask(shape: str, dy: np.ndarray, dx: np.ndarray, r: float) -> np.ndarray:
    """Where ``shape``, of radius ``r``, covers the image; ``dy``, ``dx``: each pixel's offset from its
    centre."""
    if shape == "circle":
        return dy**2 + dx**2 <= r**2
    if shape == "square":
        return (np.abs(dy) <= r * 0.85) & (np.abs(dx) <= r * 0.85)
    if shape == "triangle":  # apex up: rows widen towards the base
        return (dy >= -r) & (dy <= r * 0.8) & (np.abs(dx) <= (dy + r) * 0.6)
    if shape == "cross":
        bar = r * 0.3
        return ((np.abs(dy) <= bar) & (np.abs(dx) <= r)) | ((np.abs(dx) <= bar) & (np.abs(dy) <= r))
    raise ValueError(shape)


def draw(rng: np.random.Generator, label: int, size: int = IMAGE_SIZE) -> np.ndarray:
    """One uint8 HxWx3 image of class ``label``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r = rng.uniform(0.18, 0.32) * size
    cy, cx = rng.uniform(r, size - r, size=2)
    background = rng.uniform(0, 255, size=3)
    # A foreground far enough from the background that the shape is always visible.
    foreground = (background + rng.uniform(90, 165, size=3)) % 256
    image = np.broadcast_to(background, (size, size, 3)).copy()
    image[_mask(CLASS_NAMES[label], yy - cy, xx - cx, r)] = foreground
    image += rng.normal(0, 12, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def generate(
    seed: int, examples: dict[str, int] | None = None
) -> dict[str, tuple[list[np.ndarray], list[int]]]:
    """{split: (images, labels)}, classes balanced and interleaved, deterministic in ``seed``."""
    examples = examples or DEFAULT_EXAMPLES
    splits = {}
    for offset, (split, count) in enumerate(examples.items()):
        rng = np.random.default_rng([seed, offset])
        labels = [i % len(CLASS_NAMES) for i in range(count)]
        splits[split] = ([draw(rng, label) for label in labels], labels)
    return splits
