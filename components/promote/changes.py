"""The report's "what changed since the champion": the data (fingerprint, source, examples per class),
the hyperparameters, the component image, the training throughput and the test metrics, this run's
against the champion's. Read from both models' trainboard_model.json (ModelInfo: what train recorded);
a model trained before a field was recorded says so rather than guessing."""

from __future__ import annotations

from trainboard.artifacts.champion import ChampionRecord
from trainboard.artifacts.evaluation import Evaluation
from trainboard.artifacts.model import model_metadata
from trainboard.markdown import escape

DATA_SETTINGS = ("dataset", "dataset_fingerprint")  # in ModelInfo.settings beside the hyperparameters
MAX_ROWS = 30  # of the examples-per-class table: the biggest changes first


def _code(value: object) -> str:
    return f"`{value}`" if value not in (None, "") else "(not recorded)"


def _cell(value: object) -> str:
    return "(none)" if value is None else escape(str(value))


def changes_since_champion(
    run: str, model_dir: str, metrics: Evaluation, *, champion: ChampionRecord | None, root: str
) -> list[str]:
    """Markdown lines: this run (``model_dir``, ``metrics``) against ``champion``, the champion it was
    measured against; [] when this run is that champion (a retry)."""
    if champion is None:
        return ["## Since the champion", "", "No champion before this run: nothing to compare with."]
    if champion.run == run:
        return []
    this, theirs = model_metadata(model_dir), model_metadata(champion.model_in(root))
    mine, before = this.get("settings") or {}, theirs.get("settings") or {}
    lines = [f"## What changed since the champion `{champion.run}`", ""]
    if not (mine and before):
        lines += [
            f"Settings not recorded for {'the champion' if mine else 'this run'} (a model trained before "
            "they were): data and hyperparameters are not compared.",
            "",
        ]
    else:
        lines += _data(mine, before) + _hyperparameters(mine, before)
    lines += _class_counts(this, theirs)
    image, old_image = this.get("image"), theirs.get("image")
    changed = f"{_code(old_image)} -> {_code(image)}"
    lines.append(f"- Component image: {'unchanged, ' + _code(image) if image == old_image else changed}")
    lines.append(_throughput(this.get("images_per_second") or 0.0, theirs.get("images_per_second") or 0.0))
    lines += ["", *_metric_deltas(metrics, champion)]
    return lines


def _data(mine: dict, before: dict) -> list[str]:
    new, old = mine.get("dataset_fingerprint"), before.get("dataset_fingerprint")
    if new and new == old:
        line = f"- Data: unchanged (fingerprint `{new}`)"
    else:
        line = f"- Data: fingerprint {_code(old)} -> {_code(new)}"
    if mine.get("dataset") != before.get("dataset"):
        line += f"; source {_cell(before.get('dataset'))} -> {_cell(mine.get('dataset'))}"
    return [line]


def _hyperparameters(mine: dict, before: dict) -> list[str]:
    names = sorted((set(mine) | set(before)) - set(DATA_SETTINGS))
    changed = [name for name in names if mine.get(name) != before.get(name)]
    if not changed:
        return ["- Hyperparameters: unchanged", ""]
    return [
        f"- Hyperparameters: {len(changed)} changed",
        "",
        "| hyperparameter | champion | this run |",
        "|---|---|---|",
        *(f"| {escape(n)} | {_cell(before.get(n))} | {_cell(mine.get(n))} |" for n in changed),
        "",
    ]


def _class_counts(this: dict, theirs: dict) -> list[str]:
    """Examples per class and split that differ, by class name (a class added or dropped counts 0)."""
    mine, before = this.get("class_counts") or {}, theirs.get("class_counts") or {}
    if not (mine and before):
        return ["- Examples per class: not recorded for " + ("the champion" if mine else "this run")]

    def by_name(info: dict, counts: dict) -> dict[tuple[str, str], int]:
        names = info.get("class_names") or []
        return {
            (name, split): n
            for split, per_class in counts.items()
            for name, n in zip(names, per_class, strict=False)
        }

    new, old = by_name(this, mine), by_name(theirs, before)
    rows = [
        (new.get(key, 0) - old.get(key, 0), key, old.get(key, 0), new.get(key, 0))
        for key in set(new) | set(old)
        if new.get(key, 0) != old.get(key, 0)
    ]
    if not rows:
        return ["- Examples per class: unchanged"]
    rows.sort(key=lambda row: (-abs(row[0]), row[1]))
    shown = rows[:MAX_ROWS]
    return [
        f"- Examples per class: {len(rows)} (class, split) count(s) changed",
        "",
        "| class | split | champion | this run | change |",
        "|---|---|---|---|---|",
        *(f"| {escape(name)} | {split} | {o} | {n} | {d:+d} |" for d, (name, split), o, n in shown),
        *([f"\n{len(rows) - MAX_ROWS} more not shown."] if len(rows) > MAX_ROWS else []),
        "",
    ]


def _throughput(new: float, old: float) -> str:
    if not (new and old):
        return f"- Training throughput: {new or 'not recorded'} images/s (champion: {old or 'not recorded'})"
    return f"- Training throughput: {old:.1f} -> {new:.1f} images/s ({(new - old) / old:+.1%})"


def _metric_deltas(metrics: Evaluation, champion: ChampionRecord) -> list[str]:
    """The headline test metrics, this run's against the champion's as recorded at its promotion (on its
    own test split: per class, the table below compares both on this run's)."""
    mine = metrics.headline()
    shared = [name for name in mine if name in champion.metrics]
    return [
        "| test metric | champion (recorded) | this run | change |",
        "|---|---|---|---|",
        *(
            f"| {name} | {old:.4f} | {new:.4f} | {new - old:+.4f} |"
            for name, old, new in ((n, champion.metrics[n], mine[n]) for n in shared)
        ),
    ]
