"""Tests for jwst_mbkg_plus.algorithms as a package: datamodel-free, explicit API."""

import ast
import importlib
from pathlib import Path

import pytest

import jwst_mbkg_plus.algorithms as algorithms

ALG_DIR = Path(algorithms.__file__).parent
MODULES = sorted(p.stem for p in ALG_DIR.glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name", MODULES)
def test_no_datamodel_or_jwst_imports(name):
    tree = ast.parse((ALG_DIR / f"{name}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            roots = [(node.module or "").split(".")[0]]
        else:
            continue
        assert not {"jwst", "stdatamodels", "stpipe"} & set(roots), (name, roots)


@pytest.mark.parametrize("name", MODULES)
def test_all_is_declared_and_resolves(name):
    mod = importlib.import_module(f"jwst_mbkg_plus.algorithms.{name}")
    assert mod.__all__
    for attr in mod.__all__:
        assert hasattr(mod, attr), (name, attr)
    assert mod.log.name == f"jwst_mbkg_plus.algorithms.{name}"


def test_package_exports():
    for attr in algorithms.__all__:
        assert callable(getattr(algorithms, attr))
