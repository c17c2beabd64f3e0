"""The pretrained backbones: keras.applications architectures, each in front of the preprocessing its
ImageNet weights expect.

The preprocessing is exactly ``keras.applications.<module>.preprocess_input`` (tests/test_backbones.py
compares them on random images), built from Keras's own layers: a saved model takes raw pixels in
[0, 255], and serving loads it with plain ``keras.models.load_model``, no custom layer and no extra step.
Shared by train (the classifier) and ``trainboard weights fetch`` (the ImageNet cache).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np


@dataclass(frozen=True)
class Backbone:
    constructor: str  # the keras.applications function
    module: str  # the keras.applications module whose preprocess_input its ImageNet weights expect
    # "caffe" preprocessing: RGB -> BGR, then the ImageNet mean subtracted, no scaling. The others take
    # raw pixels: their preprocess_input is the identity, the architecture rescales inside itself.
    caffe: bool


BACKBONES: dict[str, Backbone] = {
    "vgg16": Backbone("VGG16", "vgg16", caffe=True),
    "resnet50": Backbone("ResNet50", "resnet50", caffe=True),
    "mobilenet_v3_small": Backbone("MobileNetV3Small", "mobilenet_v3", caffe=False),
    "mobilenet_v3_large": Backbone("MobileNetV3Large", "mobilenet_v3", caffe=False),
    "efficientnet_b0": Backbone("EfficientNetB0", "efficientnet", caffe=False),
}
# The BGR mean of "caffe" mode: keras-team/keras keras/src/applications/imagenet_utils.py
# (_preprocess_tensor_input), release 3.15.1.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
PREPROCESS_LAYER = "preprocess"  # the last preprocessing layer: its output is the backbone's input


def preprocess(name: str, pixels: keras.KerasTensor) -> keras.KerasTensor:
    """``pixels`` (RGB in [0, 255]) as backbone ``name``'s ImageNet weights expect them. float32 layers:
    exact under mixed precision too."""
    if not BACKBONES[name].caffe:
        return keras.layers.Identity(name=PREPROCESS_LAYER, dtype="float32")(pixels)
    # Subtracting the mean in RGB order then reversing the channels is preprocess_input's flip-then-subtract,
    # element for element; the reversal is a fixed 3x3 permutation (exact: ones and zeros).
    centered = keras.layers.Normalization(
        mean=list(reversed(CAFFE_MEAN_BGR)), variance=[1.0, 1.0, 1.0], dtype="float32", name="imagenet_mean"
    )(pixels)
    to_bgr = keras.layers.Dense(
        3,
        use_bias=False,
        kernel_initializer=keras.initializers.Constant(np.eye(3, dtype="float32")[::-1]),
        trainable=False,
        dtype="float32",
        name=PREPROCESS_LAYER,
    )
    return to_bgr(centered)


def backbone(name: str, image_size: int, weights: str | None = None) -> keras.Model:
    """The convolutional base of ``name`` (no top, average-pooled) at ``image_size``, its weights from
    ``weights``: None (untrained), "imagenet" (Keras downloads them) or a weights file."""
    return getattr(keras.applications, BACKBONES[name].constructor)(
        include_top=False, weights=weights, input_shape=(image_size, image_size, 3), pooling="avg"
    )
