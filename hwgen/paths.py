"""Where the non-Python parts of hwgen live (the checkout's sim/ and rtl_templates/)
and the command-line tools it runs."""
import shutil
import sys
from pathlib import Path

from .errors import HwgenError

ROOT = Path(__file__).resolve().parent.parent


def project_dir(name):
    path = ROOT / name
    if not path.is_dir():
        raise HwgenError(f"{path} is missing: hwgen runs from its checkout (pip install -e .)")
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
        raise HwgenError(f"{purpose} needs {name} (pip install {name})")
    return exe
