"""promote's report: the Markdown the KFP UI shows for the decision (and the run's outcome), what changed
since the champion, the headline numbers, per class this run against the champion, the worst-confused
pairs. Class names from the data are escaped. TensorFlow-free."""

from __future__ import annotations

from trainboard import layout, markdown
from trainboard.artifacts.evaluation import Evaluation
from trainboard.components.promote.changes import changes_since_champion
from trainboard.components.promote.chart import champion_f1, class_comparison, row_order
from trainboard.components.promote.core import Decision


def report(run: str, metrics: Evaluation, decision: Decision, root: str, *, model_dir: str = "") -> str:
    """The Markdown the KFP UI shows: the decision and why, what changed since the champion (data,
    hyperparameters, image, throughput, metrics: this run's model in ``model_dir`` against the champion's),
    the headline numbers, per class this run against the champion as a picture (inline) and a table,
    and the worst-confused pairs. Class names are escaped."""
    verdict = "**promoted**" if decision.promoted else "**not promoted**"
    if decision.forced:
        verdict += " (forced by force_promote: the gate was not applied)"
    previous = decision.previous
    champion_line = "Champion before: none"
    if previous:
        champion_line = (
            f"Champion before: `{previous.run}` (test accuracy {previous.accuracy:.4f}, "
            f"since {previous.promoted_at})"
        )
    lines = [
        f"# Evaluation of run `{run}`",
        "",
        f"Promotion: {verdict}: {decision.reason}.",
        "",
        champion_line + f"; champion now: `{decision.champion or 'none'}` "
        f"(record `{layout.champion_record(root)}`, model `{layout.champion_model_dir(root)}/`).",
        *_significance(decision, metrics),
        *(["", decision.registry] if decision.registry else []),  # the Model Registry did not take it
        "",
        *(changes_since_champion(run, model_dir, metrics, champion=previous, root=root) if model_dir else []),
        "",
        f"## Test split ({metrics.examples} examples)",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {name} | {value:.4f} |" for name, value in metrics.headline().items()),
        "",
        *_per_class(run, metrics),
        "",
        "## Most confused (true -> predicted)",
        "",
    ]
    confusions = metrics.worst_confusions()
    lines += [
        f"- {markdown.escape(true)} -> {markdown.escape(predicted)}: {count}"
        for true, predicted, count in confusions
    ] or ["- none"]
    return "\n".join(lines) + "\n"


def _significance(decision: Decision, metrics: Evaluation) -> list[str]:
    """The paired test against the champion, where it was counted."""
    rescored = metrics.champion_rescored
    if decision.p_value is None or rescored is None:
        return []
    return [
        "",
        f"Paired test against `{rescored.run}` on the same test split (McNemar's exact): "
        f"{rescored.only_this_right} examples only this run got right, {rescored.only_champion_right} only "
        f"the champion; p-value {decision.p_value:.4g}.",
    ]


def _per_class(run: str, metrics: Evaluation) -> list[str]:
    """The per-class section: the picture, then the table in the picture's order."""
    against = champion_f1(metrics)
    rescored = metrics.champion_rescored  # not None where champion_f1 found its F1s (``against``)
    champion = f" against the champion `{rescored.run}`" if against and rescored is not None else ""
    extra = " champion F1 | change |" if against else ""
    return [
        f"## Per class{champion}",
        "",
        markdown.image(f"F1 per class, this run{champion}", class_comparison(metrics, run), "image/png"),
        "",
        f"| class | precision | recall | F1 | support |{extra}",
        "|---|---|---|---|---|" + ("---|---|" if against else ""),
        *(
            f"| {markdown.escape(c.name)} | {c.precision:.4f} | {c.recall:.4f} | {c.f1:.4f} | {c.support} |"
            + (f" {against[i]:.4f} | {c.f1 - against[i]:+.4f} |" if against else "")
            for i, c in ((i, metrics.per_class[i]) for i in row_order(metrics))
        ),
    ]
