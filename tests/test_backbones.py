"""Pretrained backbones: each architecture's own preprocessing inside the model, weights files loaded
weight for weight, and the freeze / fine-tune switch (what trains, what stays, BatchNorm statistics)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from trainboard.backbones import BACKBONES, PREPROCESS_LAYER, backbone
from trainboard.components.train.models import backbone_of, build_model, set_trainable
from trainboard.config import MODELS

SIZE = 32
PIXELS = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")


def test_every_pretrained_model_has_a_backbone():
    assert set(BACKBONES) == set(MODELS) - {"small_cnn"}


@pytest.mark.parametrize("name", list(BACKBONES))
def test_the_backbone_sees_exactly_its_preprocess_input(name):
    """The model takes raw pixels; what reaches the backbone is keras.applications.<module>.preprocess_input
    of them (caffe for vgg16 / resnet50: BGR, ImageNet mean off, no [-1, 1] scaling)."""
    model = build_model(name, num_classes=3, image_size=SIZE)
    to_backbone = keras.Model(model.input, model.get_layer(PREPROCESS_LAYER).output)
    expected = getattr(keras.applications, BACKBONES[name].module).preprocess_input(PIXELS.copy())
    np.testing.assert_array_equal(to_backbone.predict(PIXELS, verbose=0), np.asarray(expected))


@pytest.fixture(scope="module")
def vgg16_file(tmp_path_factory):
    """A VGG16 weights file made here (random weights: tests cannot download ImageNet's), and its source."""
    source = backbone("vgg16", SIZE)
    path = tmp_path_factory.mktemp("weights") / "vgg16.weights.h5"
    source.save_weights(path)
    return path, source


def test_a_weights_file_sets_every_backbone_weight(vgg16_file):
    path, source = vgg16_file
    model = build_model("vgg16", num_classes=3, image_size=SIZE, weights=path)
    loaded = backbone_of(model).weights
    assert len(loaded) == len(source.weights) == 26  # 13 convolutions, kernel and bias each
    for mine, theirs in zip(loaded, source.weights, strict=True):
        assert mine.path == theirs.path
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_the_saved_model_serves_raw_pixels_with_plain_keras(vgg16_file, tmp_path):
    model = build_model("vgg16", num_classes=3, image_size=SIZE, weights=vgg16_file[0])
    model.save(tmp_path / "model.keras")
    served = keras.models.load_model(tmp_path / "model.keras")  # no custom objects, no preprocessing step
    np.testing.assert_allclose(served.predict(PIXELS, verbose=0), model.predict(PIXELS, verbose=0), atol=1e-6)


def fit_once(model: keras.Model) -> None:
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    model.fit(PIXELS, np.array([0, 1]), epochs=1, verbose=0)


def test_frozen_trains_the_head_only_and_fine_tune_the_top_layers(vgg16_file):
    model = build_model("vgg16", num_classes=3, image_size=SIZE, weights=vgg16_file[0])
    start = [w.numpy().copy() for w in backbone_of(model).weights]
    head = model.get_layer("classes").kernel.numpy().copy()
    assert set_trainable(model, frozen=True, top_layers=0) == 0
    fit_once(model)
    assert not np.array_equal(model.get_layer("classes").kernel.numpy(), head)
    for before, after in zip(start, backbone_of(model).weights, strict=True):
        np.testing.assert_array_equal(before, after.numpy())

    assert set_trainable(model, frozen=False, top_layers=2) == 2
    fit_once(model)
    changed = [
        w.path
        for before, w in zip(start, backbone_of(model).weights, strict=True)
        if not np.array_equal(before, w.numpy())
    ]
    assert sorted(changed) == sorted(
        f"{layer}/{var}" for layer in ("block5_conv2", "block5_conv3") for var in ("kernel", "bias")
    )


def test_batchnorm_statistics_stay_imagenets_while_fine_tuning(tmp_path):
    source = backbone("resnet50", SIZE)
    source.save_weights(tmp_path / "resnet50.weights.h5")
    model = build_model("resnet50", num_classes=3, image_size=SIZE, weights=tmp_path / "resnet50.weights.h5")
    norms = [
        layer for layer in backbone_of(model).layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    statistics = [(n.moving_mean.numpy().copy(), n.moving_variance.numpy().copy()) for n in norms]
    set_trainable(model, frozen=False, top_layers=0)  # everything but BatchNorm
    assert all(not n.trainable for n in norms)
    fit_once(model)
    for norm, (mean, variance) in zip(norms, statistics, strict=True):
        np.testing.assert_array_equal(norm.moving_mean.numpy(), mean)
        np.testing.assert_array_equal(norm.moving_variance.numpy(), variance)
