# The component image: every trainboard task runs in it on the cluster (`make image` builds and pushes it).
# A plain Python 3.11 base, TensorFlow with its own CUDA wheels from requirements/tensorflow-gpu.lock, and
# everything else from the same lock file as the CPU test environment, so the two differ only in the
# TensorFlow build. Not the official TensorFlow GPU image: its GPU detection broke in several releases
# (tensorflow/tensorflow #94593, #85689, #63362) and its Python version is not ours to choose. kfp is in
# runtime.lock: the components are built with install_kfp_package=False and skip the per-task kfp install.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# The trainboard wheel, built apart so that the build backend and the sources stay in this stage.
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY trainboard trainboard
COPY components components
COPY pipelines pipelines
COPY manifests manifests
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1
COPY requirements/tensorflow-gpu.lock /tmp/tensorflow-gpu.lock
COPY requirements/runtime.lock /tmp/runtime.lock
COPY --from=wheel /wheels /tmp/wheels
# The checks at the end fail the build, not the first cluster run: the pins fit together, and TensorFlow
# is a CUDA build whose CUDA libraries load (no GPU here: the driver's libcuda comes from the node).
RUN pip install --no-cache-dir -r /tmp/tensorflow-gpu.lock -r /tmp/runtime.lock \
    && pip install --no-cache-dir --no-deps /tmp/wheels/*.whl \
    && rm -rf /tmp/tensorflow-gpu.lock /tmp/runtime.lock /tmp/wheels \
    && python -c "import kfp, trainboard.pipelines.training_pipeline" \
    && python -m trainboard.components.train.devices \
    && useradd --uid 1000 --create-home --shell /usr/sbin/nologin trainboard

USER 1000
WORKDIR /home/trainboard
