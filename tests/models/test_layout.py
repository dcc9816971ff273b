"""The layout of nnp_lab.models: old import paths still work, no module is named like a
function, and the modules use only each other's public names."""

import ast
import importlib
import pathlib
import types

import nnp_lab.models as models

PACKAGE = pathlib.Path(models.__file__).parent
REPLICAS = PACKAGE.parent / "simulate" / "_replicas.py"


def _imports(path):
    """``(module, name)`` of every ``from nnp_lab... import name`` in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nnp_lab"):
            for alias in node.names:
                yield node.module, alias.name


def test_the_names_of_nnp_lab_models_data_still_import():
    from nnp_lab.models import data, dataset, sampling
    from nnp_lab.simulate._replicas import LangevinReplicas

    assert data.Dataset is dataset.Dataset is models.Dataset
    assert data.sample is sampling.sample is models.sample
    assert data.LangevinReplicas is LangevinReplicas
    for name in data.__all__:
        assert hasattr(data, name), name


def test_no_module_shares_its_dotted_name_with_a_function():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    for name in models.__all__:
        value = getattr(models, name)
        if callable(value) and not isinstance(value, type):
            assert name not in modules, f"nnp_lab.models.{name} is a module and a function"
    importlib.import_module("nnp_lab.models.distillation")
    assert not isinstance(models.distill, types.ModuleType)


def test_modules_import_only_public_names_of_each_other():
    for path in [*PACKAGE.glob("*.py"), REPLICAS]:
        for module, name in _imports(path):
            assert not name.startswith("_"), f"{path.name} imports {module}.{name}"


def test_the_md_integrator_does_not_depend_on_the_models_layer():
    assert not [m for m, _ in _imports(REPLICAS) if m.startswith("nnp_lab.models")]
