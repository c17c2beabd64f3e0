"""Installed as users install it. The wheel installs one import package, trainboard, whose layout is the
tree's (components/, pipelines/ and manifests/ linked in as trainboard.components, trainboard.pipelines and
trainboard.manifests), and carries what `trainboard manifests` renders (the manifests fell out of the wheel
once, when components/ was mapped to another import path). pip installs the wheel into a fresh venv that holds
its declared dependencies and nothing else (no TensorFlow), and the CLI works from there; pyproject's
dependencies are ranges that the lock files lie within; the `cpu` extra names a TensorFlow build that has
wheels on each platform."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.locks import locked_versions
from trainboard.app.cluster.pipeline_spec import compiled_pipeline

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]


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


def package_paths() -> set[str]:
    """Every file the wheel must hold, as it names them: the package's modules through its links, and the
    manifests it renders."""
    return {
        Path(folder, name).relative_to(REPO).as_posix()
        for folder, _, names in os.walk(REPO / "trainboard", followlinks=True)
        for name in names
        if name.endswith((".py", ".yaml")) or name == "Dockerfile"
    }


def test_the_wheel_holds_the_tree_as_it_is(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = package_paths()
    assert (
        "trainboard/components/train/core.py" in expected and "trainboard/pipelines/__init__.py" in expected
    )
    assert "trainboard/manifests/base/kustomization.yaml" in expected
    assert "trainboard/manifests/image/Dockerfile" in expected
    assert expected <= names, sorted(expected - names)
    assert {name.split("/")[0] for name in names} == {"trainboard", f"trainboard-{VERSION}.dist-info"}


def _requirements(wheel: Path) -> list[Requirement]:
    """The wheel's own Requires-Dist, what pip installs with it."""
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        fields = Parser().parsestr(archive.read(name).decode())
    return [Requirement(line) for line in fields.get_all("Requires-Dist")]


def _closure(requirements: list[Requirement]) -> dict[str, metadata.Distribution]:
    """The distributions pip would install for ``requirements`` (no extras of trainboard's), as this
    environment has them: markers evaluated for this Python, the extras each asks of the next."""
    found: dict[str, metadata.Distribution] = {}
    waiting = [(requirement, "") for requirement in requirements]
    while waiting:
        requirement, extra = waiting.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        dist = metadata.distribution(name)
        assert dist.version in requirement.specifier, f"{name} {dist.version} is not {requirement}"
        for asked in [""] * (name not in found) + sorted(requirement.extras):
            waiting += [(Requirement(line), asked) for line in dist.requires or []]
        found[name] = dist
    return found


@pytest.fixture(scope="module")
def fresh_venv(wheel, tmp_path_factory) -> Path:
    """A new venv, the wheel installed by pip, and beside it exactly the distributions its dependencies
    resolve to, linked file by file from this environment (the locked versions, offline)."""
    root = tmp_path_factory.mktemp("fresh")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    own = {canonicalize_name(p.name.split("-")[0]) for p in site.glob("*.dist-info")}  # pip, setuptools
    deps = root / "deps"
    for name, dist in _closure(_requirements(wheel)).items():
        if name in own:
            continue
        for file in dist.files:
            if file.parts[0] == "..":  # console scripts: the venv's bin/ is not this one's
                continue
            target = deps / file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(file.locate())
    (site / "locked_dependencies.pth").write_text(f"{deps}\n")
    env = {**os.environ, "PIP_NO_INDEX": "1"}
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)], check=True, env=env)
    return venv


def run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / args[0]), *args[1:]], capture_output=True, text=True, cwd=cwd)


def test_the_installed_wheel_adds_one_top_level_name_trainboard(fresh_venv, tmp_path):
    """A team's own components/ or pipelines/ package never meets trainboard's."""
    installed = run(
        fresh_venv,
        "python",
        "-c",
        "from importlib.metadata import distribution;"
        "files = distribution('trainboard').files;"
        "print(sorted({f.parts[0] for f in files if f.parts[0] != '..'}));"
        "print(distribution('trainboard').read_text('top_level.txt').split())",
        cwd=tmp_path,
    )
    assert installed.stdout.splitlines() == [
        f"['trainboard', 'trainboard-{VERSION}.dist-info']",
        "['trainboard']",
    ], installed.stderr
    for name in ("components", "pipelines", "manifests"):
        absent = run(fresh_venv, "python", "-c", f"import {name}", cwd=tmp_path)
        assert f"No module named '{name}'" in absent.stderr, (name, absent.stderr)


def test_a_fresh_venv_without_tensorflow_runs_the_cli(fresh_venv, tmp_path):
    check = run(fresh_venv, "python", "-m", "pip", "check", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr  # the ranges accept the locked versions
    where = run(
        fresh_venv,
        "python",
        "-c",
        "import trainboard.manifests, trainboard.components.train; print(trainboard.__file__)",
        cwd=tmp_path,
    )
    assert where.stdout.startswith(str(fresh_venv)), where.stdout + where.stderr
    absent = run(fresh_venv, "python", "-c", "import tensorflow", cwd=tmp_path)
    assert "No module named 'tensorflow'" in absent.stderr

    version = run(fresh_venv, "trainboard", "--version", cwd=tmp_path)
    assert version.stdout == f"trainboard {VERSION}\n", version.stderr
    alone = run(fresh_venv, "trainboard", cwd=tmp_path)
    assert alone.returncode == 0 and "usage: trainboard" in alone.stdout, alone.stderr
    compiled = run(fresh_venv, "trainboard", "compile", "-o", "pipeline.yaml", cwd=tmp_path)
    assert compiled.returncode == 0, compiled.stderr
    assert (tmp_path / "pipeline.yaml").read_text() == compiled_pipeline(), "the same pipeline, byte for byte"
    manifests = run(
        fresh_venv, "trainboard", "manifests", "--bucket", "gs://team/tb", "--overlay", "basic", cwd=tmp_path
    )
    assert manifests.returncode == 0, manifests.stderr
    assert "gs://team/tb/tensorboard" in manifests.stdout and "kind: Deployment" in manifests.stdout


def test_dependencies_are_ranges_that_hold_the_locked_versions():
    """Exact pins in pyproject would refuse any other version of kfp or numpy a user already has; the
    lock files keep the exact versions `make` installs, and they must lie within the ranges."""
    locked = locked_versions()
    declared = PYPROJECT["project"]["dependencies"] + [
        line for extra in ("train", "test") for line in PYPROJECT["project"]["optional-dependencies"][extra]
    ]
    for line in declared:
        requirement = Requirement(line)
        assert not re.search(r"(^|,)\s*===?", str(requirement.specifier)), f"{line}: a range, not a pin"
        assert requirement.specifier, f"{line}: the version tested is its lower bound"
        name = canonicalize_name(requirement.name)
        assert locked[name] in requirement.specifier, f"the lock's {name}=={locked[name]} is not {line}"


PLATFORMS = {  # (sys_platform, platform_machine): the TensorFlow 2.21 build with a wheel there
    ("linux", "x86_64"): "tensorflow-cpu",
    ("win32", "AMD64"): "tensorflow-cpu",
    ("linux", "aarch64"): "tensorflow",
    ("darwin", "arm64"): "tensorflow",
}


@pytest.mark.parametrize(("platform", "build"), PLATFORMS.items(), ids=lambda v: str(v))
def test_the_cpu_extra_names_a_build_with_wheels_on_each_platform(platform, build):
    """tensorflow-cpu 2.21 has wheels for Linux and Windows on x86-64 only (checked on PyPI); elsewhere
    `pip install trainboard[cpu]` must ask for tensorflow, which is CPU-only there. The lock file for
    `make` (requirements/tensorflow-cpu.txt) makes the same choice."""
    environment = {"sys_platform": platform[0], "platform_machine": platform[1], "extra": ""}
    lines = [line for line in (REPO / "requirements" / "tensorflow-cpu.txt").read_text().splitlines()]
    for source, requirements in (
        ("pyproject", [Requirement(line) for line in PYPROJECT["project"]["optional-dependencies"]["cpu"]]),
        ("tensorflow-cpu.txt", [Requirement(line) for line in lines if line and not line.startswith("#")]),
    ):
        chosen = [r.name for r in requirements if Marker(str(r.marker)).evaluate(environment)]
        assert chosen == [build], (source, platform, chosen)
