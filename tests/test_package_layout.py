"""The package's layout rules: light imports, no cycle, small modules, fenced jwst internals."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import jwst_mbkg_plus
from jwst_mbkg_plus import jwst_internals

PACKAGE = Path(jwst_mbkg_plus.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 500


def _module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path):
    """Modules of this package that ``path`` imports, function-level imports included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.ImportFrom):  # relative: from . import x
            base = _module_name(path).rsplit(".", node.level)[0]
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


def test_no_import_cycle():
    names = {_module_name(p): p for p in MODULES}
    graph = {m: {t for t in _imports(p) if t in names and t != m} for m, p in names.items()}
    state, path = {}, []

    def visit(m):
        state[m] = "open"
        path.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == "open":
                cycle = path[path.index(t):] + [t]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        path.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_is_small(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.name} has {n} lines; split it by responsibility"


def test_import_loads_no_jwst():
    """Importing the package, its algorithms and the CLI parser loads no jwst module."""
    code = (
        "import sys, jwst_mbkg_plus, jwst_mbkg_plus.algorithms, jwst_mbkg_plus.cli as cli\n"
        "cli._build_parser()\n"
        "bad = sorted(m for m in sys.modules if m == 'jwst' or m.startswith('jwst.'))\n"
        "assert not bad, bad[:5]\n"
    )
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr


def test_lazy_names_resolve():
    for name in jwst_mbkg_plus.__all__:
        assert getattr(jwst_mbkg_plus, name) is not None
    with pytest.raises(AttributeError, match="no_such_name"):
        jwst_mbkg_plus.no_such_name  # noqa: B018


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_private_attributes_of_jwst_only_in_jwst_internals(path):
    """No module but jwst_internals reads a private attribute of a jwst/stpipe object."""
    if path.name in ("jwst_internals.py", "_jwst_mirrored.py"):
        return  # the compatibility layer and its table of mirrored sources
    private = ("_get_crds_parameters", "_reference_files_used", "_pass_invalid_values",
               "_strict_validation", "_do_sub")
    text = path.read_text()
    calls = [name for name in private if f"._{name.lstrip('_')}" in text
             and f"super().{name}" not in text]
    assert not calls, f"{path.name} uses {calls}: go through jwst_mbkg_plus.jwst_internals"


def test_installed_jwst_is_supported():
    """A jwst minor version the compatibility layer was not written for fails loudly."""
    assert jwst_internals.JWST_MINOR in jwst_internals.SUPPORTED_JWST, (
        f"jwst {jwst_internals.JWST_MINOR} is not one of {jwst_internals.SUPPORTED_JWST}: re-read "
        "every source in jwst_mbkg_plus.jwst_internals._MIRRORED for it, then add its digests"
    )
    assert set(jwst_internals.MIRRORED_SOURCES) == {
        name for name, digests in jwst_internals._MIRRORED.items()
        if digests[jwst_internals.JWST_MINOR] is not None
    }


@pytest.mark.parametrize("name", sorted(jwst_internals._MIRRORED))
def test_mirrored_jwst_sources_unchanged(name):
    """The jwst, stpipe and stdatamodels code the plus steps copy is what they were written for."""
    expected = jwst_internals._MIRRORED[name].get(jwst_internals.JWST_MINOR)
    if expected is None:
        assert jwst_internals.JWST_MINOR in jwst_internals.SUPPORTED_JWST
        # Not a plain function in this version (see its shim): nothing to digest.
        with pytest.raises(TypeError):
            jwst_internals.mirrored_source_digest(name)
        return
    assert jwst_internals.mirrored_source_digest(name) == expected, (
        f"{name} changed in jwst {jwst_internals.JWST_MINOR}: re-read it, update what "
        "jwst_mbkg_plus.jwst_internals says mirrors it, then record the new digest in _MIRRORED"
    )
