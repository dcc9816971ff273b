"""Layers only import downward: every module's imports (also those inside functions) parsed.

The layer order is written here once (and in the README's architecture section): a module
may import its own layer and the layers below, never one above. Only the display layer
imports the notebook widget libraries; plotly (figures are data, not widgets) also the
property results' ``plot()``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nnp_lab"

#: Bottom to top. A name is a module or package under nnp_lab.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "validation", "threads", "display"),
    ("potentials",),
    ("testing",),
    ("build",),
    ("analysis",),
    ("simulate",),
    ("models",),
    ("properties",),
    ("screening",),
    ("widgets",),
    ("cli", "__init__"),
]
LEVEL = {name: level for level, names in enumerate(LAYERS) for name in names}
#: Notebook libraries -> the layers that may import them.
DISPLAY_ONLY = {
    "ipywidgets": ("widgets",),
    "anywidget": ("widgets",),
    "IPython": ("widgets",),
    "plotly": ("widgets", "properties"),
}


def _unit(module: str) -> str:
    """The layer unit of a dotted module name under nnp_lab (``nnp_lab.simulate._md`` ->
    ``simulate``; ``nnp_lab`` -> ``__init__``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, at any depth."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # `from nnp_lab import widgets` imports a layer by its attribute name
            if module == "nnp_lab":
                found += [(node.lineno, f"nnp_lab.{alias.name}") for alias in node.names]
    return found


def violations(path: Path) -> list[str]:
    own = _unit(_module_name(path))
    if own not in LEVEL:
        return [f"{path}: module {own!r} is in no layer; add it to LAYERS in {__file__}"]
    bad = []
    for line, module in imports(path):
        top = module.split(".")[0]
        if top == "nnp_lab" and module != "nnp_lab":
            unit = _unit(module)
            if unit in LEVEL and LEVEL[unit] > LEVEL[own]:
                bad.append(
                    f"{path.relative_to(PACKAGE.parent)}:{line} ({own}) imports "
                    f"{module} ({unit}, a layer above)"
                )
        elif top in DISPLAY_ONLY and own not in DISPLAY_ONLY[top]:
            bad.append(
                f"{path.relative_to(PACKAGE.parent)}:{line} ({own}) imports {module}: "
                f"only nnp_lab.{' and nnp_lab.'.join(DISPLAY_ONLY[top])} may import {top}"
            )
    return bad


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_module_imports_only_its_layer_and_below(path: Path) -> None:
    assert not violations(path), "\n".join(violations(path))


def test_the_check_catches_an_upward_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "nnp_lab"
    (fake / "simulate").mkdir(parents=True)
    module = fake / "simulate" / "_bad.py"
    module.write_text("def f():\n    from nnp_lab.widgets.live import watch\n    import plotly\n")
    monkeypatch.setitem(globals(), "PACKAGE", fake)
    found = violations(module)
    assert len(found) == 2
    assert "imports nnp_lab.widgets.live (widgets, a layer above)" in found[0]
    assert "only nnp_lab.widgets and nnp_lab.properties may import plotly" in found[1]


def test_relative_imports_are_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "nnp_lab"
    (fake / "build").mkdir(parents=True)
    module = fake / "build" / "thing.py"
    module.write_text("from ..simulate import md\nfrom . import other\n")
    monkeypatch.setitem(globals(), "PACKAGE", fake)
    assert [m for _, m in imports(module)] == ["nnp_lab.simulate", "nnp_lab.build"]
    assert len(violations(module)) == 1


def test_no_module_imports_another_modules_private_names() -> None:
    bad = []
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nnp_lab"):
                bad += [
                    f"{path.relative_to(PACKAGE.parent)}:{node.lineno} imports "
                    f"{node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_")
                ]
    assert not bad, "give the helper a public name in its module:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    "package",
    [
        "nnp_lab",
        "nnp_lab.potentials",
        "nnp_lab.build",
        "nnp_lab.analysis",
        "nnp_lab.simulate",
        "nnp_lab.models",
        "nnp_lab.properties",
        "nnp_lab.screening",
        "nnp_lab.widgets",
    ],
)
def test_no_dotted_name_is_both_a_module_and_a_function(package: str) -> None:
    """``import nnp_lab.simulate.md as m`` must not silently give the function."""
    import importlib

    pytest.importorskip("anywidget") if package == "nnp_lab.widgets" else None
    pkg = importlib.import_module(package)
    folder = Path(pkg.__file__).parent
    clashes = [
        name
        for name in getattr(pkg, "__all__", [])
        if callable(getattr(pkg, name, None))
        and not isinstance(getattr(pkg, name), type)
        and ((folder / f"{name}.py").exists() or (folder / name / "__init__.py").exists())
    ]
    assert not clashes, f"{package}: {clashes} are both modules and functions"
