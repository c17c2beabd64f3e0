# The component image: every trainboard task runs in it on the cluster.
# TensorFlow's GPU build comes from the base image; everything else from the same lock file as the CPU
# test environment, so the two differ only in the TensorFlow build.
FROM tensorflow/tensorflow:2.21.0-gpu

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1

WORKDIR /opt/trainboard
COPY requirements/runtime.lock requirements/runtime.lock
RUN pip install --no-cache-dir -r requirements/runtime.lock

COPY pyproject.toml README.md ./
COPY trainboard trainboard
COPY components components
COPY pipelines pipelines
RUN pip install --no-cache-dir --no-deps . \
    && useradd --uid 1000 --create-home --shell /usr/sbin/nologin trainboard

USER 1000
