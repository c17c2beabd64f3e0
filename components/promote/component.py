from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Input, Markdown, Model, Output

from trainboard.component_image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def promote(
    trained_model: Input[Model],
    evaluation: Input[Artifact],
    root: str,
    run: str,
    job_id: str,
    min_accuracy: float,
    min_improvement: float,
    min_significance: float,
    force_promote: bool,
    model_registry: str,
    tensorboard_url: str,
    report: Output[Markdown],
) -> NamedTuple("Promotion", promoted=bool, champion=str, reason=str):
    from collections import namedtuple
    from pathlib import Path

    from trainboard.artifacts.evaluation import read_evaluation
    from trainboard.artifacts.lease import held, holder_for
    from trainboard.components.promote.core import promote as gate
    from trainboard.components.promote.report import report as write_report
    from trainboard.config import PromotionRule, field_values

    metrics = read_evaluation(evaluation.path)
    rule = PromotionRule(**field_values(PromotionRule, locals()))
    with held(root, run, holder_for(job_id), release_at_end=True):  # the run's last step frees its name
        decision = gate(root, run, trained_model.path, metrics, rule=rule, links=(job_id, tensorboard_url))
    Path(report.path).write_text(write_report(run, metrics, decision, root, model_dir=trained_model.path))
    promotion = namedtuple("Promotion", ["promoted", "champion", "reason"])
    return promotion(decision.promoted, decision.champion, decision.reason)
