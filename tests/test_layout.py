"""The package's architecture: every import points downward, and there are no cycles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import studies

ROOT = Path(studies.__file__).parent
STUDY_PACKAGES = ("question", "causes", "convergence", "vanishing", "relu_failure",
                  "mechanisms", "torch_digits")
# higher imports lower; equal layers only within one package
LAYERS = {
    "studies": 7,  # the package docstring only
    "studies.cli": 6,
    "studies.report": 5,
    "studies.registry": 5,
    **{f"studies.{name}": 4 for name in STUDY_PACKAGES},
    "studies.plots": 3,
    "studies.bench": 3,
    "studies.speed": 3,
    "studies.stats": 2,
    "studies.run": 2,
    "diagnostics": 0,
}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def unit(module: str) -> str:
    """The layer entry a module belongs to (longest matching prefix)."""
    best = max((k for k in LAYERS if module == k or module.startswith(k + ".")), key=len)
    return best


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module
            for a in node.names:  # `from pkg import module` imports the module, not pkg
                sub = f"{target}.{a.name}"
                found.add(sub if sub in MODULES else target)
    return {m for m in found if m.split(".")[0] in ("studies", "diagnostics")}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_downward(name):
    here = unit(name)
    for target in imports(MODULES[name]):
        there = unit(target)
        if there == here:
            continue  # inside one package: checked for cycles below
        assert LAYERS[there] < LAYERS[here], f"{name} imports {target}: {there} is not below {here}"


def test_no_import_cycles():
    graph = {
        name: {t for t in imports(path) if t in MODULES and t != name}
        for name, path in MODULES.items()
    }
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack, node, nxt]))
            if nxt not in state:
                visit(nxt, [*stack, node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])


def test_every_study_package_is_registered():
    from studies.registry import STUDIES

    on_disk = {p.parent.name for p in ROOT.glob("*/grid.py")}
    assert on_disk == set(STUDIES) == set(STUDY_PACKAGES)


def test_every_activation_has_its_own_colour_apart_from_the_outcomes():
    from diagnostics.activations import ACTIVATIONS
    from studies import plots

    colours = [plots.color(a) for a in ACTIVATIONS]
    assert len(set(colours)) == len(ACTIVATIONS)
    assert not set(colours) & set(plots.OUTCOME_COLORS.values())


def test_every_figure_has_a_caption():
    from studies.registry import STUDIES

    for study in STUDIES.values():
        for name, caption in study.captions.items():
            assert name.endswith(".png") and len(caption) > 40, (study.name, name)
