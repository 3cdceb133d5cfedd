"""``rtl.json`` as a typed value: :class:`Manifest`.

:func:`hwgen.generate_rtl` returns one and :meth:`Manifest.read` reads the
one an RTL directory holds. It carries the resolved :class:`~hwgen.core.design.Design`
the RTL was generated from, so nothing has to rebuild the settings from
loose keys.
"""
import json
from dataclasses import dataclass
from pathlib import Path

from .design import Design
from .vectors import sha256 as _sha256
from ..errors import HwgenError

__all__ = ["Manifest", "read_manifest", "check_integrity"]

#: the keys every rtl.json has (the simulator and the synthesis steps read them)
_MANIFEST_KEYS = ("top", "sources", "input_features", "input_bits", "n_classes", "label_offset",
                  "label_width", "scores_offset", "score_width", "latency", "layers")


def read_manifest(rtl_dir):
    """``rtl.json`` of ``rtl_dir`` as a dict, or a clear error where it is
    missing, not JSON, or lacks a key."""
    path = Path(rtl_dir) / "rtl.json"
    if not path.is_file():
        raise HwgenError(f"{path} is missing: point --rtl at a directory written by 'hwgen rtl'")
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise HwgenError(f"{path} is not valid JSON: {exc}") from None
    missing = [k for k in _MANIFEST_KEYS if k not in manifest] if isinstance(manifest, dict) else ["all"]
    if missing:
        raise HwgenError(f"{path} lacks {', '.join(missing)}")
    for key in ("sources", "sim_sources"):
        names = manifest.get(key, [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise HwgenError(f"{path}: {key} must be a list of file names")
        for name in names:   # never a path out of the RTL directory
            p = Path(name)
            if not name or p.is_absolute() or ".." in p.parts or len(p.parts) != 1:
                raise HwgenError(f"{path}: {key} names {name!r}, which is not a file of the RTL directory")
    return manifest


def check_integrity(rtl_dir, manifest, artifact_digests=None, *, allow_edited=False):
    """Refuse an RTL directory whose Verilog is not the one ``rtl.json``
    records (``verilog_sha256``), or that was generated from another
    artifact (``artifact_sha256`` none of ``artifact_digests``: the
    artifact file's sha256, and its canonical serialization's), unless
    ``allow_edited``. Returns the list of what differs (empty when
    everything matches, or with ``allow_edited`` what was let through)."""
    rtl_dir = Path(rtl_dir)
    found = []
    recorded = manifest.get("verilog_sha256")
    source = rtl_dir / manifest["sources"][0]
    if recorded and source.is_file() and _sha256(source) != recorded:
        found.append(f"{source} is not the Verilog rtl.json records (its sha256 differs from verilog_sha256)")
    recorded = manifest.get("artifact_sha256")
    if recorded and artifact_digests is not None and recorded not in set(artifact_digests):
        found.append(f"{rtl_dir} was generated from another artifact (rtl.json's artifact_sha256 "
                     f"differs from the artifact's)")
    if found and not allow_edited:
        raise HwgenError(f"{found[0]}; regenerate it with 'hwgen rtl', or pass --allow-edited to "
                         f"verify an edited design on purpose")
    return found


@dataclass(frozen=True)
class Manifest:
    """What the RTL in ``path`` is: its top module and sources, the ports'
    shape, latency and interval in clocks, one entry per layer, the
    design, and the versions of the tools that generated it (``{}`` for an
    rtl.json of hwgen 0.1, which did not record them). ``data`` is the whole ``rtl.json`` (documented in
    docs/format.md)."""
    path: Path
    top: str
    sources: tuple
    input_features: int
    input_bits: int
    n_classes: int
    latency: int
    interval: int
    design: Design
    layers: tuple
    verilog_sha256: str
    artifact_sha256: str
    versions: dict
    data: dict

    @classmethod
    def from_dict(cls, data, path):
        """The manifest of the ``rtl.json`` contents ``data`` in directory ``path``."""
        if "design" in data:
            design = Design.from_dict(data["design"])
        else:   # rtl.json written before the design was recorded (hwgen 0.1)
            folded = data.get("arch") == "folded"
            design = Design(arch=data.get("arch", "unrolled"), pipeline=int(data.get("pipeline", 0)),
                            family=data.get("family", "generic"),
                            datapaths={e["name"]: e.get("datapath", "planes")
                                       if e.get("datapath", "planes") in ("planes", "direct") else "planes"
                                       for e in data["layers"]},
                            folding={e["name"]: (e["pe"], e["simd"]) if "pe" in e else None
                                     for e in data["layers"]} if folded else {})
        return cls(path=Path(path), top=data["top"], sources=tuple(data["sources"]),
                   input_features=data["input_features"], input_bits=data["input_bits"],
                   n_classes=data["n_classes"], latency=int(data["latency"]),
                   interval=int(data.get("interval", 1)), design=design, layers=tuple(data["layers"]),
                   verilog_sha256=data.get("verilog_sha256"), artifact_sha256=data.get("artifact_sha256"),
                   versions=dict(data.get("versions") or {}), data=data)

    @classmethod
    def read(cls, rtl_dir):
        """The manifest of the RTL directory ``rtl_dir`` (one written by
        ``hwgen rtl`` or :func:`hwgen.generate_rtl`)."""
        data = read_manifest(rtl_dir)
        try:
            return cls.from_dict(data, rtl_dir)
        except (KeyError, TypeError, ValueError) as exc:
            raise HwgenError(f"{Path(rtl_dir) / 'rtl.json'} is malformed ({type(exc).__name__}: {exc})") from None
