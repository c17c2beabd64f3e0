"""The layout is the architecture, checked by walking every import (module level and inside functions,
as a component's body imports its core) in the source tree:

- a component imports the shared package and its own modules, never another component;
- the shared package (trainboard/, less the commands on top of it) never reaches up into the components,
  the pipeline or the commands;
- no import cycle, lazy imports included: ``from package import module`` runs the package's __init__ first,
  so it counts as importing both (a facade's own modules never import the facade);
- no production module over MAX_LINES lines: past that a module holds more than one thing to read;
- tests and benchmarks share helpers through tests/support/, not through each other or conftest.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("trainboard", "components", "pipelines")
# Modules on top of the pipeline: they compile or run it (and so import pipelines), nothing imports them.
COMMANDS = ("trainboard.cli", "trainboard.local_run", "trainboard.cluster")
MAX_LINES = 350


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


def source_files(*roots: str) -> list[Path]:
    return sorted(path for root in roots for path in (REPO / root).rglob("*.py"))


EDGES = graph(source_files(*PACKAGES))


def package_of(module: str) -> str:
    return module.split(".")[0]


def component_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "components" and len(parts) > 1 else None


def is_command(module: str) -> bool:
    return any(module == c or module.startswith(c + ".") for c in COMMANDS)


def violations(edges: dict[str, set[str]]) -> list[str]:
    found = []
    for module, targets in sorted(edges.items()):
        for target in sorted(targets):
            own, other = component_of(module), component_of(target)
            if own and other and own != other:
                found.append(f"component {own} imports component {other}: {module} -> {target}")
            above = package_of(target) == "pipelines" or is_command(target)
            if package_of(module) == "trainboard" and not is_command(module):
                if above or package_of(target) == "components":
                    found.append(f"the shared package reaches up: {module} -> {target}")
            elif package_of(module) == "components" and above:
                found.append(f"a component reaches up: {module} -> {target}")
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
    assert "components.train.core" in EDGES["components.train.component"], "a body import counts"
    assert "trainboard.storage" in EDGES["components.train.core"]
    assert "components.train.component" in EDGES["pipelines.training_pipeline"]
    assert len([m for m in EDGES if component_of(m)]) >= 20


def test_no_component_imports_another_and_nothing_reaches_up():
    assert violations(EDGES) == []


def test_the_rules_catch_a_component_importing_another():
    drifted = {
        **EDGES,
        "components.promote.core": EDGES["components.promote.core"] | {"components.evaluate.metrics"},
    }
    assert violations(drifted) == [
        "component promote imports component evaluate: components.promote.core -> components.evaluate.metrics"
    ]
    upward = {**EDGES, "trainboard.config": EDGES["trainboard.config"] | {"components.prepare_data.sources"}}
    assert violations(upward) == [
        "the shared package reaches up: trainboard.config -> components.prepare_data.sources"
    ]


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
    project = {m for m in EDGES if package_of(m) == "trainboard"} - {"trainboard"}  # the bare __init__
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
    files = source_files(*PACKAGES)
    assert modules_over(MAX_LINES, files) == []
    longest = max(files, key=lambda path: len(path.read_text().splitlines()))
    assert modules_over(len(longest.read_text().splitlines()) - 1, files) == [
        f"{longest.relative_to(REPO)}: {len(longest.read_text().splitlines())} lines"
    ]


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
    """Every package, module and component of the tree is in the README's layout list, and every module the
    list names for a component exists."""
    layout = readme_layout()
    for folder in sorted(p for p in (REPO / "trainboard").iterdir() if (p / "__init__.py").is_file()):
        assert f"{folder.name}/" in layout, f"trainboard/{folder.name}/ is not in the README's layout"
    for module in sorted((REPO / "trainboard").glob("*.py")):
        if module.name != "__init__.py":
            assert module.name in layout, f"trainboard/{module.name} is not in the README's layout"
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
