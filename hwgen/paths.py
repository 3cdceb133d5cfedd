"""Where the non-Python parts of hwgen live, and the command-line tools it runs.

The HDL and tool-script templates (``rtl_templates``) and the cocotb
testbenches (``sim``) are package data: an installed wheel holds them as
``hwgen/rtl_templates/`` and ``hwgen/sim/``, found with
:mod:`importlib.resources`. An editable install (``pip install -e .``) reads
them from the checkout's top-level ``rtl_templates/`` and ``sim/``, where
they are kept.
"""
import importlib.resources
import shutil
import sys
from pathlib import Path

from .errors import NotInstalledError

#: the package data directories (pyproject.toml's package-dir maps them)
RESOURCES = ("rtl_templates", "sim")

_CHECKOUT = Path(__file__).resolve().parent.parent


def resource_dir(name):
    """The directory of package data ``name`` (one of :data:`RESOURCES`) on
    the file system."""
    if name not in RESOURCES:
        raise ValueError(f"hwgen has no package data {name!r}")
    installed = importlib.resources.files(__package__) / name
    if installed.is_dir():              # a wheel: hwgen/<name>/, a real directory
        return Path(str(installed))
    checkout = _CHECKOUT / name         # an editable install: the checkout's <name>/
    if checkout.is_dir():
        return checkout
    raise NotInstalledError(f"hwgen's package data {name}/ is missing (looked in {installed} and {checkout}): "
                       f"reinstall hwgen (pip install --force-reinstall hwgen)")


def resource(name, filename):
    """Path of ``filename`` inside package data ``name``."""
    path = resource_dir(name) / filename
    if not path.is_file():
        raise NotInstalledError(f"hwgen's package data {name}/{filename} is missing: reinstall hwgen")
    return path


def find_tool(name, purpose):
    """Path of executable ``name`` (a pip package's script): on PATH, else next
    to this Python (an unactivated venv); a clear error naming ``purpose`` and
    the package if neither."""
    exe = shutil.which(name)
    if exe is None:
        candidate = Path(sys.executable).parent / name
        exe = str(candidate) if candidate.exists() else None
    if exe is None:
        raise NotInstalledError(f"{purpose} needs {name} (pip install {name})")
    return exe
