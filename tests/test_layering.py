"""The package layout is the pipeline: nothing imports upward, and the
integer side never imports torch (checked on the source, every import
statement, at any depth in a function)."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "hwgen"

#: package -> the hwgen packages and top-level modules it may import
ALLOWED = {
    "core": {"core", "errors", "interop"},   # interop: only Artifact.to_qonnx, imported when called
    "training": {"training", "core", "errors"},
    "rtl": {"rtl", "core", "errors", "paths", "versions"},
    "tools": {"tools", "rtl", "core", "errors", "paths", "versions"},
    "interop": {"interop", "core", "errors"},
    "explore": {"explore", "tools", "rtl", "core", "errors", "paths", "versions", "api", "training"},
}
#: modules that must never import torch (nor hwgen.training, which does)
TORCH_FREE = ["core", "rtl", "tools", "interop", "explore/measure.py", "explore/budget.py", "explore/datapath.py",
              "explore/breakdown.py", "api.py", "flowconfig.py", "__init__.py", "errors.py", "paths.py", "versions.py"]
# (cli.py imports hwgen.training inside the commands that train; its parser imports only the
# torch-free hwgen.training.options: tests/test_package.py checks --help loads no torch)


def imports(path):
    """``(absolute module names)`` that ``path`` imports, relative ones resolved."""
    tree = ast.parse(path.read_text())
    pkg = ["hwgen", *path.relative_to(PKG).parent.parts]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[:len(pkg) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
                out += [mod] if node.module else [f"{mod}.{a.name}" for a in node.names]
            else:
                out.append(node.module)
    return out


def files(entry):
    p = PKG / entry
    return sorted(p.rglob("*.py")) if p.is_dir() else [p]


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_nothing_imports_upward(package):
    for f in files(package):
        for mod in imports(f):
            if mod.startswith("hwgen."):
                first = mod.split(".")[1]
                assert first in ALLOWED[package], f"{f.relative_to(PKG)} imports {mod}"


@pytest.mark.parametrize("entry", TORCH_FREE)
def test_the_integer_side_never_imports_torch(entry):
    for f in files(entry):
        for mod in imports(f):
            assert mod.split(".")[0] != "torch", f"{f.relative_to(PKG)} imports {mod}"
            if f.name != "__init__.py" or entry != "__init__.py":
                assert not mod.startswith("hwgen.training"), f"{f.relative_to(PKG)} imports {mod}"
