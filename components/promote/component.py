from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Input, Markdown, Model, Output

from trainboard.components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def promote(
    model: Input[Model],
    evaluation: Input[Artifact],
    root: str,
    run: str,
    min_accuracy: float,
    min_improvement: float,
    force_promote: bool,
    report: Output[Markdown],
) -> NamedTuple("Promotion", promoted=bool, champion=str):
    import json
    from collections import namedtuple
    from pathlib import Path

    from trainboard.components.evaluate.metrics import Evaluation
    from trainboard.components.promote.core import promote as gate
    from trainboard.components.promote.core import report as write_report
    from trainboard.config import PromotionRule

    metrics = Evaluation.from_json(json.loads(Path(evaluation.path).read_text()))
    rule = PromotionRule(min_accuracy, min_improvement, force_promote)
    decision = gate(root, run, model.path, metrics, rule)
    Path(report.path).write_text(write_report(run, metrics, decision, root))
    return namedtuple("Promotion", ["promoted", "champion"])(decision.promoted, decision.champion)
