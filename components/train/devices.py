"""What the train task asked of its pod, and whether TensorFlow got it: a GPU run that finds no GPU stops
at once instead of training for hours on the CPU."""

from __future__ import annotations

import ctypes
import logging
import sys
from pathlib import Path

import tensorflow as tf

log = logging.getLogger(__name__)


class NoGPU(RuntimeError):
    """The task asked for GPUs and TensorFlow sees none."""


def gpus_requested(accelerator_type: str, accelerator_count: str) -> int:
    """The GPUs the pipeline asked for the train pod (0 for other accelerators or none)."""
    kind = accelerator_type.lower()
    is_gpu = "gpu" in kind or kind.startswith("nvidia")  # nvidia.com/gpu; Vertex's NVIDIA_L4, ...
    return int(accelerator_count) if is_gpu and accelerator_count.isdigit() else 0


def check_gpus(requested: int) -> None:
    """Log the devices TensorFlow sees; NoGPU when ``requested`` GPUs were asked for and it sees none."""
    gpus = tf.config.list_physical_devices("GPU")
    log.info("TensorFlow %s sees: %s", tf.__version__, [d.name for d in tf.config.list_physical_devices()])
    if requested and not gpus:
        build = tf.sysconfig.get_build_info()
        raise NoGPU(
            f"the task asked for {requested} GPU(s) and TensorFlow sees none. Likely causes: the pod "
            "got no GPU limit (kubectl describe pod: no nvidia.com/gpu under Limits; a Kubeflow Pipelines "
            "backend older than 2.4.0 drops a limit given by a pipeline parameter), or the image's CUDA "
            "does not fit the node's driver (this TensorFlow was built for CUDA "
            f"{build.get('cuda_version', 'none')}, cuDNN {build.get('cudnn_version', 'none')}; nvidia-smi "
            "on the node shows the driver's CUDA version). Not training on the CPU instead: that would take "
            "hours for the same model"
        )


# The CUDA libraries TensorFlow's GPU kernels need, as its and-cuda wheels install them (nvidia/*/lib/).
CUDA_LIBRARIES = (
    "libcudart.so",
    "libcublas.so",
    "libcublasLt.so",
    "libcufft.so",
    "libcusolver.so",
    "libcusparse.so",
    "libcudnn.so",
    "libnccl.so",
)


def check_cuda_build() -> list[str]:
    """The image build's check (`python -m trainboard.components.train.devices`): TensorFlow is a CUDA
    build and each CUDA library it needs is installed and loads. Returns the libraries' paths; RuntimeError
    otherwise."""
    if not tf.test.is_built_with_cuda():
        raise RuntimeError(f"TensorFlow {tf.__version__} is not a CUDA build")
    nvidia = [Path(p) / "nvidia" for p in sys.path if (Path(p) / "nvidia").is_dir()]
    loaded = []
    for name in CUDA_LIBRARIES:
        found = sorted(f for root in nvidia for f in root.glob(f"*/lib/{name}*"))
        if not found:
            raise RuntimeError(f"{name} is not installed (the nvidia-* wheels of tensorflow[and-cuda])")
        ctypes.CDLL(str(found[0]))
        loaded.append(str(found[0]))
    return loaded


if __name__ == "__main__":
    build = tf.sysconfig.get_build_info()
    print(
        f"TensorFlow {tf.__version__}, CUDA {build.get('cuda_version')}, cuDNN {build.get('cudnn_version')}:"
    )
    print("\n".join(check_cuda_build()))
