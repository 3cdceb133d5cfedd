"""``rtl.json`` as a typed value: :class:`Manifest`.

:func:`hwgen.generate_rtl` returns one and :meth:`Manifest.read` reads the
one an RTL directory holds. It carries the resolved :class:`~hwgen.design.Design`
the RTL was generated from, so nothing has to rebuild the settings from
loose keys.
"""
from dataclasses import dataclass
from pathlib import Path

from .design import Design
from .errors import HwgenError

__all__ = ["Manifest"]


@dataclass(frozen=True)
class Manifest:
    """What the RTL in ``path`` is: its top module and sources, the ports'
    shape, latency and interval in clocks, one entry per layer, and the
    design. ``data`` is the whole ``rtl.json`` (documented in
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
                   data=data)

    @classmethod
    def read(cls, rtl_dir):
        """The manifest of the RTL directory ``rtl_dir`` (one written by
        ``hwgen rtl`` or :func:`hwgen.generate_rtl`)."""
        from .rtl import read_manifest
        data = read_manifest(rtl_dir)
        try:
            return cls.from_dict(data, rtl_dir)
        except (KeyError, TypeError, ValueError) as exc:
            raise HwgenError(f"{Path(rtl_dir) / 'rtl.json'} is malformed ({type(exc).__name__}: {exc})") from None
