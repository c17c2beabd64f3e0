"""The report's picture: per class, this run's F1 beside the champion's on the same test split, one row a
class, the biggest drop first. A table of 102 classes and two scores each hides where the new model got
worse; a row of dots shows it. PIL only (promote runs without TensorFlow)."""

from __future__ import annotations

from PIL import Image, ImageDraw

from trainboard.artifacts.evaluation import Evaluation
from trainboard.charts import fitted, font, png_bytes

ROW = 14  # px per class
NAMES = 170  # px for the class names
PLOT_LEFT = NAMES + 12
PLOT_WIDTH = 400  # F1 from 0 to 1
TOP = 62  # the legend and the axis above the rows
BETTER, WORSE, SAME = (26, 150, 65), (215, 48, 39), (90, 90, 90)
CHAMPION = (150, 150, 150)
_SAME = 0.005  # closer than this counts as unchanged: a rounding, not a change


def x_of(score: float) -> int:
    return PLOT_LEFT + round(score * PLOT_WIDTH)


def y_of(row: int) -> int:
    """The middle of the ``row``-th row drawn."""
    return TOP + row * ROW + ROW // 2


def champion_f1(metrics: Evaluation) -> list[float] | None:
    """The champion's F1 per class on this test split, where evaluate measured it."""
    rescored = metrics.champion_rescored
    if rescored is None or len(rescored.f1) != len(metrics.per_class):
        return None
    return rescored.f1


def row_order(metrics: Evaluation) -> list[int]:
    """The classes as drawn, top first: the biggest drop against the champion first, else the worst F1."""
    against = champion_f1(metrics)
    scores = [c.f1 for c in metrics.per_class]

    def key(i: int) -> tuple[float, str]:
        return (scores[i] - against[i] if against else scores[i]), metrics.per_class[i].name

    return sorted(range(len(scores)), key=key)


def class_comparison(metrics: Evaluation, run: str) -> bytes:
    """PNG: a row per class, its name, this run's F1 (a dot: green better, red worse than the champion's)
    and the champion's (a grey ring) on one 0-1 axis, and the difference."""
    against = champion_f1(metrics)
    order = row_order(metrics)
    image = Image.new("RGB", (PLOT_LEFT + PLOT_WIDTH + 70, TOP + ROW * len(order) + 10), "white")
    draw = ImageDraw.Draw(image)
    title = "F1 per class on this run's test split" + (
        ", the biggest drop first" if against else ", worst first"
    )
    draw.text((6, 4), title, fill="black", font=font(15))
    draw.ellipse((6, 30, 16, 40), fill=SAME)
    draw.text((22, 35), f"this run ({run})", fill="black", font=font(12), anchor="lm")
    if against and metrics.champion_rescored is not None:  # champion_f1 reads it: both or neither
        legend = 22 + font(12).getlength(f"this run ({run})") + 20
        draw.ellipse((legend, 30, legend + 10, 40), outline=CHAMPION, width=2)
        name = metrics.champion_rescored.run
        draw.text((legend + 16, 35), f"champion ({name})", fill="black", font=font(12), anchor="lm")
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        draw.line((x_of(tick), TOP - 4, x_of(tick), TOP + ROW * len(order)), fill=(225, 225, 225))
        draw.text((x_of(tick), TOP - 6), f"{tick:g}", fill="black", font=font(11), anchor="md")
    for row, i in enumerate(order):
        y = y_of(row)
        score = metrics.per_class[i].f1
        draw.text((NAMES, y), fitted(metrics.per_class[i].name, 11, NAMES - 8), "black", font(11), "rm")
        fill = SAME
        if against:
            change = score - against[i]
            fill = BETTER if change > _SAME else WORSE if change < -_SAME else SAME
            draw.line((x_of(against[i]), y, x_of(score), y), fill=fill, width=2)
            draw.ellipse(
                (x_of(against[i]) - 5, y - 5, x_of(against[i]) + 5, y + 5), outline=CHAMPION, width=2
            )
            draw.text(
                (PLOT_LEFT + PLOT_WIDTH + 12, y), f"{change:+.2f}", fill=fill, font=font(11), anchor="lm"
            )
        draw.ellipse((x_of(score) - 4, y - 4, x_of(score) + 4, y + 4), fill=fill)
    return png_bytes(image)
