from kfp import dsl
from kfp.dsl import ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from trainboard.components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def evaluate(
    data: Input[Dataset],
    model: Input[Model],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
):
    from trainboard.components.evaluate.core import evaluate as run_evaluation

    result = run_evaluation(data.path, model.path)
    metrics.log_metric("test_accuracy", result.test_accuracy)
    metrics.log_metric("test_loss", result.test_loss)
    classification_metrics.log_confusion_matrix(result.class_names, result.confusion_matrix)
