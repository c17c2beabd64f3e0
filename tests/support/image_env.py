"""The team image's environment without Docker (none runs here): a venv made by the pip command of
manifests/image/Dockerfile, read from it, then trainboard without dependencies, as the image installs it.
No TensorFlow, as in the pod: what TensorBoard and its plugins do there, they do here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "manifests" / "image" / "Dockerfile"


def image_pip_arguments() -> list[str]:
    """The arguments of the Dockerfile's `pip install -c requirements/runtime.lock ...`."""
    lines = DOCKERFILE.read_text().replace("\\\n", " ").splitlines()
    return next(line.split()[3:] for line in lines if line.startswith("RUN pip install") and " -c " in line)


def image_venv(folder: Path) -> str:
    """The venv's python, made in ``folder`` unless it is there already."""
    python = folder / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, *image_pip_arguments()], check=True, cwd=REPO)
        subprocess.run([*pip, "--no-deps", str(REPO)], check=True, cwd=REPO)
    return str(python)
