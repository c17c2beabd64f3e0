"""What the evaluation's pictures share (PIL and numpy only, no TensorFlow: promote draws too): a font that
scales, one colour scale for shares in [0, 1], PNG bytes. The pictures themselves belong to their
component (evaluate's confusion matrix, promote's per-class comparison)."""

from __future__ import annotations

import functools
import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# White to a deep blue through lighter blues (ColorBrewer's "Blues" ends): shades a person orders at a glance.
_SCALE = np.array([(255, 255, 255), (198, 219, 239), (107, 174, 214), (33, 113, 181), (8, 48, 107)], float)
# Shares are coloured by their square root: a class confused 3 % of the time is visible beside the
# diagonal's 90 %, where a linear scale would leave it white. The colour bar is labelled in shares.
_GAMMA = 0.5
SCALE_TICKS = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0)


@functools.cache
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's own scalable font (Aileron) at ``size`` px: no font file needed on the machine (Pillow's
    bitmap font where it was built without FreeType)."""
    return ImageFont.load_default(size=size)


def colour(share: float) -> tuple[int, int, int]:
    """The colour of a share in [0, 1]."""
    position = np.clip(share, 0.0, 1.0) ** _GAMMA * (len(_SCALE) - 1)
    low = min(int(position), len(_SCALE) - 2)
    mix = _SCALE[low] + (position - low) * (_SCALE[low + 1] - _SCALE[low])
    red, green, blue = (round(float(c)) for c in mix)
    return red, green, blue


def text_colour(share: float) -> str:
    """Black on the light end of the scale, white on the dark one."""
    return "white" if share**_GAMMA > 0.55 else "black"


def colour_bar(draw: ImageDraw.ImageDraw, x: int, y: int, *, height: int, label: str) -> None:
    """A vertical colour bar at (x, y), 0 at the bottom, labelled at SCALE_TICKS (in %)."""
    width = 14
    for row in range(height):
        draw.line((x, y + row, x + width, y + row), fill=colour((1 - row / (height - 1)) ** (1 / _GAMMA)))
    draw.rectangle((x, y, x + width, y + height - 1), outline="gray")
    for tick in SCALE_TICKS:
        ty = y + round((1 - tick**_GAMMA) * (height - 1))
        draw.line((x + width, ty, x + width + 3, ty), fill="black")
        draw.text((x + width + 5, ty), f"{tick:.0%}", fill="black", font=font(11), anchor="lm")
    draw.text((x, y - 10), label, fill="black", font=font(11), anchor="ld")


def fitted(text: str, size: int, width: int) -> str:
    """``text`` cut (with an ellipsis) to fit ``width`` px at font ``size``."""
    if font(size).getlength(text) <= width:
        return text
    while text and font(size).getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def png_bytes(image: Image.Image) -> bytes:
    """A chart as PNG: flat colours and text compress well, and stay sharp."""
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
