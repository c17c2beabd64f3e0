from kfp import dsl
from kfp.dsl import Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from trainboard.component_image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def evaluate(
    data: Input[Dataset],
    trained_model: Input[Model],
    root: str,
    run: str,
    job_id: str,
    force_promote: bool,
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    evaluation: Output[Artifact],
):
    from trainboard.artifacts.evaluation import write_evaluation
    from trainboard.artifacts.lease import held, holder_for
    from trainboard.components.evaluate.core import evaluate as run_evaluation

    with held(root, run, holder_for(job_id)):
        result = run_evaluation(data.path, trained_model.path, root, run, force_promote=force_promote)
    for name, value in result.headline().items():
        metrics.log_metric(name, value)
    classification_metrics.log_confusion_matrix(result.class_names, result.confusion_matrix)
    write_evaluation(evaluation.path, result)  # everything promote needs for its decision and report
