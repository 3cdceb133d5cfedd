"""Where the non-Python parts of hwgen live (the checkout's sim/ and rtl_templates/)."""
from pathlib import Path

from .errors import HwgenError

ROOT = Path(__file__).resolve().parent.parent


def project_dir(name):
    path = ROOT / name
    if not path.is_dir():
        raise HwgenError(f"{path} is missing: hwgen runs from its checkout (pip install -e .)")
    return path
