"""The layout is the architecture: one import package, trainboard, whose layers are its folders, checked
by walking every import (module level and inside functions, as a component's body imports its core):

    trainboard/storage/      bytes in and out, local or gs://     imports: storage (and the base modules)
    trainboard/*.py, artifacts/, sources/   the shared library    imports: storage, the library
    trainboard/components/   one KFP component a folder           imports: storage, the library, its folder
    trainboard/pipelines/    the wiring                           imports: components, storage, the library
    trainboard/board/        the team TensorBoard                 imports: storage, the library, board
    trainboard/admin/        operations on a root                 imports: storage, the library, admin
    trainboard/app/          the CLI, the cluster, local runs     imports: everything; nothing imports it

(components/, pipelines/ and manifests/ live at the repository's top level and are linked into trainboard/.)
The base modules (errors: the user's-mistake error; faults: the tests' fault points) every layer may import.
Also: no import cycle, lazy imports included (``from package import module`` runs the package's __init__
first, so it counts as importing both); no production module over MAX_LINES lines; tests and benchmarks
share helpers through tests/support/, not through each other or conftest.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "trainboard"
BASE = ("trainboard", "trainboard.errors", "trainboard.faults")  # "trainboard": `from trainboard import x`
# Each layer, and the layers it may import (besides the base modules). The library is every module of
# trainboard that is in no other layer.
MAY_IMPORT = {
    "storage": {"storage"},
    "library": {"storage", "library"},
    "components": {"storage", "library", "components"},
    "pipelines": {"storage", "library", "components", "pipelines"},
    "board": {"storage", "library", "board"},
    "admin": {"storage", "library", "admin"},
    "app": {"storage", "library", "components", "pipelines", "board", "admin", "app"},
}
MAX_LINES = 350
MAX_FUNCTION_LINES = 60  # a function's body, its docstring not counted


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, modules: set[str] | frozenset[str] = frozenset()) -> set[str]:
    """Every absolute module name ``path`` imports, anywhere in the file: ``from a import b`` is a, and
    a.b too when that is one of ``modules`` (Python runs a's __init__ before it looks for b)."""
    return imports_in(ast.parse(path.read_text(), str(path)), modules)


def imports_in(tree: ast.AST, modules: set[str] | frozenset[str] = frozenset()) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names} & set(modules)
    return names


def graph(files: list[Path]) -> dict[str, set[str]]:
    """{module: the project's modules it imports}."""
    modules = {module_name(path): path for path in files}
    return {
        name: {target for target in imported(path, set(modules)) if target in modules} - {name}
        for name, path in modules.items()
    }


def package_files() -> list[Path]:
    """Every module of the import package, through the links to components/, pipelines/ and manifests/."""
    return sorted(
        Path(folder, name)
        for folder, _, names in os.walk(PACKAGE, followlinks=True)
        for name in names
        if name.endswith(".py")
    )


def source_files(root: str) -> list[Path]:
    return sorted((REPO / root).rglob("*.py"))


EDGES = graph(package_files())


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in MAY_IMPORT:
        return parts[1]
    return "library"


def component_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if layer_of(module) == "components" and len(parts) > 2 else None


def violations(edges: dict[str, set[str]]) -> list[str]:
    found = []
    for module, targets in sorted(edges.items()):
        for target in sorted(targets - set(BASE)):
            own, other = component_of(module), component_of(target)
            if own and other and own != other:
                found.append(f"component {own} imports component {other}: {module} -> {target}")
            elif layer_of(target) not in MAY_IMPORT[layer_of(module)]:
                found.append(f"{layer_of(module)} imports {layer_of(target)}: {module} -> {target}")
    return found


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected set of two or more modules (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in edges.get(module, ()):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            members = []
            while True:
                member = stack.pop()
                members.append(member)
                if member == module:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def test_the_walk_sees_the_imports_it_must_judge():
    component = "trainboard.components.train"
    assert f"{component}.core" in EDGES[f"{component}.component"], "a body import counts"
    assert "trainboard.storage" in EDGES[f"{component}.core"]
    assert f"{component}.component" in EDGES["trainboard.pipelines.training_pipeline"]
    assert len([m for m in EDGES if component_of(m)]) >= 20
    assert {layer_of(m) for m in EDGES} == set(MAY_IMPORT), "every layer has modules"
    assert (PACKAGE / "manifests" / "base" / "kustomization.yaml").is_file(), "the manifests are linked in"


def test_no_component_imports_another_and_no_layer_reaches_up():
    assert violations(EDGES) == []


def test_the_rules_catch_a_component_importing_another_and_a_layer_reaching_up():
    promote, evaluate = "trainboard.components.promote.core", "trainboard.components.evaluate.metrics"
    drifted = {**EDGES, promote: EDGES[promote] | {evaluate}}
    assert violations(drifted) == [f"component promote imports component evaluate: {promote} -> {evaluate}"]
    sources = "trainboard.components.prepare_data.sources"
    upward = {**EDGES, "trainboard.config": EDGES["trainboard.config"] | {sources}}
    assert violations(upward) == [f"library imports components: trainboard.config -> {sources}"]
    lease, mirror = "trainboard.artifacts.lease", "trainboard.board.leases"
    assert violations({**EDGES, lease: EDGES[lease] | {mirror}}) == [
        f"library imports board: {lease} -> {mirror}"
    ]
    knows_leases = {**EDGES, "trainboard.storage.uris": {"trainboard.layout"}}
    assert violations(knows_leases) == [
        "storage imports library: trainboard.storage.uris -> trainboard.layout"
    ]
    assert violations(
        {**EDGES, "trainboard.board.mirror": EDGES["trainboard.board.mirror"] | {"trainboard.app.cli"}}
    )


def test_from_a_package_import_a_module_imports_the_package_too():
    modules = {"trainboard.storage", "trainboard.storage.gcs"}
    tree = ast.parse("from trainboard.storage import gcs\nfrom trainboard.storage.uris import join")
    assert imports_in(tree, modules) == {
        "trainboard.storage",
        "trainboard.storage.gcs",
        "trainboard.storage.uris",
    }


def test_no_import_cycles():
    assert cycles(EDGES) == []
    # What storage/backends.py once did: the facade (__init__) imports backends, backends reads its
    # modules through the facade.
    through_facade = {
        **EDGES,
        "trainboard.storage.backends": EDGES["trainboard.storage.backends"] | {"trainboard.storage"},
    }
    assert any(
        {"trainboard.storage", "trainboard.storage.backends"} <= set(c) for c in cycles(through_facade)
    )
    # A lower layer reaching up: the URI rules using the root check, which uses storage.
    looped = {**EDGES, "trainboard.storage.uris": EDGES["trainboard.storage.uris"] | {"trainboard.roots"}}
    assert any(
        {"trainboard.roots", "trainboard.storage", "trainboard.storage.uris"} <= set(c)
        for c in cycles(looped)
    )


def test_the_checks_go_one_way():
    """The declarations import no check, the small checks nothing that checks call: weights and the
    parameter checks both use trainboard.checks, which uses neither."""
    project = set(EDGES) - {"trainboard"}  # the bare __init__
    assert EDGES["trainboard.config"] & project == {"trainboard.errors"}
    assert EDGES["trainboard.checks"] & project == {"trainboard.errors", "trainboard.layout"}
    assert "trainboard.config_checks" not in EDGES["trainboard.weights"]


def modules_over(max_lines: int, files: list[Path]) -> list[str]:
    return [
        f"{path.relative_to(REPO)}: {lines} lines"
        for path in files
        if (lines := len(path.read_text().splitlines())) > max_lines
    ]


def test_no_production_module_is_over_the_line_limit():
    files = package_files()
    assert modules_over(MAX_LINES, files) == []
    longest = max(files, key=lambda path: len(path.read_text().splitlines()))
    assert modules_over(len(longest.read_text().splitlines()) - 1, files) == [
        f"{longest.relative_to(REPO)}: {len(longest.read_text().splitlines())} lines"
    ]


def function_lengths(files: list[Path]) -> dict[str, int]:
    """{"path:line name": lines of its body past the docstring} of every function in ``files``."""
    lengths = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                body = node.body
                if (
                    len(body) > 1
                    and isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant)
                ):
                    body = body[1:]
                name = f"{path.relative_to(REPO)}:{node.lineno} {node.name}"
                lengths[name] = (node.end_lineno or node.lineno) - body[0].lineno + 1
    return lengths


def test_no_function_is_over_the_line_limit():
    lengths = function_lengths(package_files())
    assert {name: n for name, n in lengths.items() if n > MAX_FUNCTION_LINES} == {}
    longest = max(lengths, key=lambda name: lengths[name])
    assert [name for name, n in lengths.items() if n > lengths[longest] - 1] == [longest]


@pytest.mark.parametrize("root", ["tests", "bench"])
def test_tests_and_benchmarks_share_helpers_only_through_support(root):
    for path in source_files(root):
        if "support" in path.parts:
            continue
        for name in imported(path):
            head = name.split(".")[0]
            assert not head.startswith("test_") and head != "conftest", f"{path.name} imports {name}"
            assert not (head == "tests" and not name.startswith("tests.support")), f"{path.name}: {name}"


def readme_layout() -> str:
    text = (REPO / "README.md").read_text()
    return text.split("### Repository layout", 1)[1].split("```", 2)[1]


def test_the_readmes_layout_matches_the_tree():
    """Every folder and module of the package (its layers' too) is in the README's layout list, and every
    module the list names for a component exists."""
    layout = readme_layout()
    for folder in sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()):
        assert f"{folder.name}/" in layout, f"trainboard/{folder.name}/ is not in the README's layout"
    for layer in ("", "board", "admin", "app"):
        for module in sorted((PACKAGE / layer).glob("*.py")):
            if module.name != "__init__.py":
                assert module.stem in layout, f"{module.relative_to(REPO)} is not in the README's layout"
    for component in sorted(p for p in (REPO / "components").iterdir() if (p / "core.py").is_file()):
        [line] = [line for line in layout.splitlines() if f" {component.name}/" in line]
        modules = {p.stem for p in component.glob("*.py")} - {"__init__", "component"}
        if len(modules) > 1:  # a component with modules beside its core lists them all
            listed = set(line.split(None, 1)[1].replace(",", " ").split())
            assert listed == modules, (component.name, listed, modules)
    for top in (
        "trainboard/",
        "components/<name>/",
        "pipelines/training_pipeline.py",
        "manifests/",
        "tests/",
    ):
        assert top in layout
