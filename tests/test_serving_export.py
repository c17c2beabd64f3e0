"""The serving export: encoded images in, the Keras model's probabilities and the class names out, in
KServe's layout; evaluate refuses a model whose export predicts otherwise, so it is never promoted."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.support.training import FAST
from trainboard.artifacts.dataset import read_encoded
from trainboard.artifacts.model import load_trained
from trainboard.artifacts.serving_export import (
    INPUT_NAME,
    TOLERANCE,
    ServingExportMismatch,
    write_serving_export,
)
from trainboard.components.evaluate.core import evaluate, predict_test_split
from trainboard.components.train.core import train

RUN = "exported"


@pytest.fixture(scope="module")
def trained(demo_data, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("exported")
    train(demo_data, str(out / "model"), str(out / "root"), RUN, config=FAST)
    return str(out / "model")


def test_the_export_takes_encoded_images_and_returns_the_keras_probabilities_and_class_names(
    demo_data, trained
):
    assert (Path(trained) / "serving" / "1" / "saved_model.pb").is_file(), "KServe's <version>/ layout"
    model, info = load_trained(trained)
    _, expected = predict_test_split(model, info, demo_data, batch_size=32)
    encoded = read_encoded(demo_data, "test")
    assert len(encoded) == len(expected) > 0
    serve = tf.saved_model.load(f"{trained}/serving/1").signatures["serving_default"]
    out = serve(**{INPUT_NAME: tf.constant(encoded[:20])})
    np.testing.assert_allclose(out["probabilities"].numpy(), expected[:20], atol=TOLERANCE)
    assert out["classes"].numpy().astype(str).tolist() == [info.class_names] * 20


def test_a_model_whose_export_predicts_otherwise_stops_evaluate_naming_the_image(
    demo_data, trained, tmp_path
):
    broken = shutil.copytree(trained, tmp_path / "model")
    model, info = load_trained(broken)
    head = model.layers[-1]
    head.bias.assign(head.bias.numpy() + np.arange(len(info.class_names), dtype="float32"))
    shutil.rmtree(broken / "serving")
    write_serving_export(model, info.class_names, info.image_size, broken)
    with pytest.raises(ServingExportMismatch, match=r"predicts differently .* test image 0 differs by"):
        evaluate(demo_data, str(broken), str(tmp_path / "root"), RUN)


def test_a_model_without_an_export_is_not_promotable(demo_data, trained, tmp_path):
    bare = shutil.copytree(trained, tmp_path / "model")
    shutil.rmtree(bare / "serving")
    with pytest.raises(ServingExportMismatch, match=r"no saved_model\.pb: the model has no serving export"):
        evaluate(demo_data, str(bare), str(tmp_path / "root"), RUN)


# Every op the serving export of this project's small_cnn uses, each registered in TensorFlow 2.20 (TF
# Serving 2.20.0, the runtimeVersion of manifests/components/serving): a new op here means checking that
# release still loads the export before this list grows.
OPS_TF_SERVING_2_20_HAS = {
    "AddV2",
    "AssignVariableOp",
    "BiasAdd",
    "Cast",
    "Const",
    "Conv2D",
    "DecodeImage",
    "DisableCopyOnRead",
    "ExpandDims",
    "Identity",
    "Less",
    "LogicalAnd",
    "MatMul",
    "MaxPool",
    "Mean",
    "MergeV2Checkpoints",
    "Mul",
    "NoOp",
    "Pack",
    "Placeholder",
    "ReadVariableOp",
    "Relu",
    "Reshape",
    "ResizeBilinear",
    "RestoreV2",
    "Round",
    "Rsqrt",
    "SaveV2",
    "Select",
    "Shape",
    "ShardedFilename",
    "Softmax",
    "Squeeze",
    "StatefulPartitionedCall",
    "StatelessWhile",
    "StaticRegexFullMatch",
    "StridedSlice",
    "StringJoin",
    "Sub",
    "TensorListFromTensor",
    "TensorListGetItem",
    "TensorListReserve",
    "TensorListSetItem",
    "TensorListStack",
    "Tile",
    "VarHandleOp",
    "VarIsInitializedOp",
}


def test_the_export_uses_only_ops_the_pinned_tf_serving_release_has(trained):
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel.FromString((Path(trained) / "serving/1/saved_model.pb").read_bytes())
    graph = saved.meta_graphs[0].graph_def
    ops = {n.op for n in graph.node} | {n.op for f in graph.library.function for n in f.node_def}
    assert ops <= OPS_TF_SERVING_2_20_HAS, sorted(ops - OPS_TF_SERVING_2_20_HAS)
