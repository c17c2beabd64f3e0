"""The wheel is the layout: import paths are file paths, and it carries what `trainboard manifests` renders
(the manifests fell out of the wheel once, when components/ was mapped to another import path). Built
with pip as a user would, installed into a folder of its own, and used from there."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(REPO)],
        check=True,
        capture_output=True,
    )
    [built] = out.glob("trainboard-*.whl")
    return built


def test_the_wheel_holds_the_tree_as_it_is(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {
        path.relative_to(REPO).as_posix()
        for package in ("trainboard", "components", "pipelines")
        for path in (REPO / package).rglob("*.py")
    }
    assert sources <= names, sorted(sources - names)
    manifests = {path.relative_to(REPO).as_posix() for path in (REPO / "manifests").rglob("*.yaml")}
    assert manifests and manifests <= names, sorted(manifests - names)
    assert not [n for n in names if n.startswith(("tests/", "bench/"))]


def test_manifests_render_from_the_installed_wheel(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    code = (
        "import sys, trainboard.manifests as m;"
        f"assert m.__file__.startswith({str(target)!r}), m.__file__;"
        f"assert str(m.MANIFESTS_DIR).startswith({str(target)!r}), m.MANIFESTS_DIR;"
        "from trainboard.cli import main;"
        "sys.exit(main(['manifests', '--bucket', 'gs://team/tb', '--overlay', 'basic']))"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); {code}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "gs://team/tb/tensorboard" in result.stdout and "kind: Deployment" in result.stdout
