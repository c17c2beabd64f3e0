"""The component image, checked without Docker (none runs here): hadolint, and what the Dockerfile must
hold: a pinned Python 3.11 base with the CUDA build of the TensorFlow the CPU environment tests and its
CUDA wheels, pinned and checked at build time; the locked packages (kfp among them), no build stage left
in the image, a non-root user; `make image` builds and pushes the tag the compiled pipeline uses."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.support.cli import BIN
from trainboard.component_image import DEFAULT_IMAGE

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    logical = re.sub(
        r"\\\n\s*", " ", "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    )
    return [
        (line.split()[0].upper(), line.split(None, 1)[1]) for line in logical.splitlines() if line.strip()
    ]


def final_stage(steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


def test_hadolint_finds_nothing():
    result = subprocess.run([str(BIN / "hadolint"), str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_is_plain_python_with_the_cuda_build_of_the_tested_tensorflow():
    steps = instructions(DOCKERFILE.read_text())
    [base] = [args.split("=", 1)[1] for op, args in steps if op == "ARG" and args.startswith("PYTHON_IMAGE=")]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base), "Python 3.11, pinned to a patch release"
    assert [args for op, args in steps if op == "FROM"] == ["${PYTHON_IMAGE} AS wheel", "${PYTHON_IMAGE}"]
    # The CPU build, or the plain one where tensorflow-cpu has no wheels: the same version.
    [tested] = set(
        re.findall(
            r"^tensorflow(?:-cpu)?==([^;\s]+)", (REPO / "requirements/tensorflow-cpu.txt").read_text(), re.M
        )
    )
    gpu = [
        line
        for line in (REPO / "requirements/tensorflow-gpu.lock").read_text().splitlines()
        if line[:1] != "#"
    ]
    assert gpu[0] == f"tensorflow[and-cuda]=={tested}", "the image and the tests differ only in the build"
    cuda = gpu[1:]
    assert {"nvidia-cudnn-cu12", "nvidia-cublas-cu12", "nvidia-cuda-runtime-cu12"} <= {
        p.split("==")[0] for p in cuda
    }
    assert all(re.fullmatch(r"nvidia-[a-z0-9-]+==[0-9.]+", pin) for pin in cuda), cuda


def test_final_image_installs_the_locked_packages_and_runs_as_a_user():
    steps = final_stage(instructions(DOCKERFILE.read_text()))
    run = " && ".join(args for op, args in steps if op == "RUN")
    assert "pip install --no-cache-dir -r /tmp/tensorflow-gpu.lock -r /tmp/runtime.lock" in run
    assert "pip install --no-cache-dir --no-deps /tmp/wheels/" in run
    assert "rm -rf /tmp/tensorflow-gpu.lock /tmp/runtime.lock /tmp/wheels" in run
    assert "import kfp" in run  # the tasks skip the per-task kfp install (install_kfp_package=False)
    assert "python -m trainboard.components.train.devices" in run  # a CUDA build whose CUDA libraries load
    locked = (REPO / "requirements/runtime.lock").read_text().splitlines()
    assert "kfp==2.17.3" in locked and "kfp-kubernetes==2.17.3" in locked
    # Only the wheel comes from the build stage: sources and build backend stay behind.
    assert [args for op, args in steps if op == "COPY" and "--from" in args] == [
        "--from=wheel /wheels /tmp/wheels"
    ]
    assert not re.search(r"apt-get|apk |gcc|build-essential", run)
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1] not in ("root", "0"), users


def test_make_image_builds_and_pushes_the_default_tag():
    result = subprocess.run(["make", "-n", "image"], cwd=REPO, capture_output=True, text=True, check=True)
    assert f"docker build -t {DEFAULT_IMAGE} ." in result.stdout
    assert f"docker push {DEFAULT_IMAGE}" in result.stdout


def test_the_image_builds_cuda_check_refuses_a_tensorflow_without_cuda():
    """What the image build runs, here on the CPU build of the test environment: it must fail."""
    done = subprocess.run(
        [str(BIN / "python"), "-m", "trainboard.components.train.devices"], capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "is not a CUDA build" in done.stderr
