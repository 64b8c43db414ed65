"""The product's tests never import the twin (docs/testing.md): no file under
tests/unit, tests/functional, tests/integration or tests/judges imports
k8stwin, twin.* or a twin-owned test package (tests.twin, tests.twin_kube,
tests.twin_tools, tests.twin_judges), puts twin/ on sys.path, or carries a
script that imports k8stwin. A test double the twin backs is borrowed from
tests/fakes, the one seam between the two."""

import ast
import re

import pytest

from tests.conftest import ROOT

PRODUCT = ("tests/unit", "tests/functional", "tests/integration", "tests/judges")
TWIN_TESTS = ("tests.twin", "tests.twin_kube", "tests.twin_tools", "tests.twin_judges")
SCRIPT_IMPORT = re.compile(r"^\s*(?:from|import)\s+(?:twin\.)?k8stwin\b", re.M)


def _twin_module(name):
    return (name == "k8stwin" or name.startswith("k8stwin.") or name == "twin" or name.startswith("twin.")
            or any(name == t or name.startswith(t + ".") for t in TWIN_TESTS))


def _mentions_twin(node):
    return any(isinstance(n, ast.Constant) and isinstance(n.value, str) and "twin" in n.value
               for n in ast.walk(node))


def twin_imports(path):
    """(line, what) for each way ``path`` reaches the twin."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names if _twin_module(a.name)]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level == 0 and _twin_module(mod):
                found.append((node.lineno, f"from {mod} import ..."))
            elif node.level == 0 and mod == "tests" and any(_twin_module("tests." + a.name) for a in node.names):
                found.append((node.lineno, f"from tests import {', '.join(a.name for a in node.names)}"))
            elif node.level == 0 and not mod and any(_twin_module(a.name) for a in node.names):
                found.append((node.lineno, "from . import twin"))
        elif isinstance(node, ast.Call):
            fn = node.func
            # sys.path.insert/append/extend(...) or sys.path += / [...] with "twin" in the arguments
            if (isinstance(fn, ast.Attribute) and fn.attr in ("insert", "append", "extend")
                    and isinstance(fn.value, ast.Attribute) and fn.value.attr == "path"
                    and isinstance(fn.value.value, ast.Name) and fn.value.value.id == "sys"
                    and any(_mentions_twin(a) for a in node.args)):
                found.append((node.lineno, "sys.path." + fn.attr + "(... twin ...)"))
            # importlib.import_module("k8stwin...")
            if (isinstance(fn, ast.Attribute) and fn.attr == "import_module" and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                    and _twin_module(node.args[0].value)):
                found.append((node.lineno, f"import_module({node.args[0].value!r})"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and SCRIPT_IMPORT.search(node.value):
            found.append((node.lineno, "a script that imports k8stwin"))
    return found


def product_test_files():
    return sorted(p for d in PRODUCT for p in (ROOT / d).rglob("*.py"))


def test_the_scan_sees_the_product_tests():
    files = product_test_files()
    assert any(p.name.startswith("test_") for p in files)
    for d in PRODUCT:
        assert (ROOT / d).is_dir(), d


@pytest.mark.parametrize("text,hit", [
    ("import k8stwin\n", True),
    ("from k8stwin.tools import nvidia_smi\n", True),
    ("from twin.k8stwin import kube\n", True),
    ("from tests.twin_tools.conftest import TWIN\n", True),
    ("from tests import twin_judges\n", True),
    ("import sys\nsys.path.insert(0, str(ROOT / 'twin'))\n", True),
    ("S = '''\\nimport sys\\nfrom k8stwin import state\\n'''\n", True),
    ("from tests.fakes.nvidia import hw\n", False),
    ("import sys\nsys.path.insert(0, root)\n", False),
    ("'''the twin's emulated nvidia-smi'''\n", False),
])
def test_the_scan_finds_each_form(tmp_path, text, hit):
    path = tmp_path / "test_x.py"
    path.write_text(text)
    assert bool(twin_imports(path)) is hit, twin_imports(path)


def test_product_tests_never_import_the_twin():
    bad = {str(p.relative_to(ROOT)): found for p in product_test_files() if (found := twin_imports(p))}
    assert not bad, "product tests import the twin (borrow a double from tests/fakes instead): " + "; ".join(
        f"{f}:{line} {what}" for f, hits in bad.items() for line, what in hits)
