# The component image: every trainboard task runs in it on the cluster (`make image` builds and pushes it).
# TensorFlow's GPU build comes from the base image; everything else from the same lock file as the CPU
# test environment, so the two differ only in the TensorFlow build. kfp is in that lock file: the
# components are built with install_kfp_package=False and skip the per-task `pip install kfp`.
ARG BASE_IMAGE=tensorflow/tensorflow:2.21.0-gpu

# The trainboard wheel, built apart so that the build backend and the sources stay in this stage.
FROM ${BASE_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY trainboard trainboard
COPY components components
COPY pipelines pipelines
COPY manifests manifests
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${BASE_IMAGE}
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1
COPY requirements/runtime.lock /tmp/runtime.lock
COPY --from=wheel /wheels /tmp/wheels
# The import at the end fails the build, not the first cluster run, if the pins do not fit the base.
RUN pip install --no-cache-dir -r /tmp/runtime.lock \
    && pip install --no-cache-dir --no-deps /tmp/wheels/*.whl \
    && rm -rf /tmp/runtime.lock /tmp/wheels \
    && python -c "import kfp, tensorflow, pipelines.training_pipeline" \
    && useradd --uid 1000 --create-home --shell /usr/sbin/nologin trainboard

USER 1000
WORKDIR /home/trainboard
