from kfp import dsl
from kfp.dsl import Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from trainboard.components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def evaluate(
    data: Input[Dataset],
    model: Input[Model],
    root: str,
    run: str,
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    evaluation: Output[Artifact],
):
    import json

    from trainboard.components.evaluate.core import evaluate as run_evaluation

    result = run_evaluation(data.path, model.path, root, run)
    for name, value in result.headline().items():
        metrics.log_metric(name, value)
    classification_metrics.log_confusion_matrix(result.class_names, result.confusion_matrix)
    with open(evaluation.path, "w") as f:  # everything promote needs for its decision and report
        json.dump(result.to_json(), f)
