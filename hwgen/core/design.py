"""One value for the hardware settings of a network: :class:`Design`.

A design says how an artifact becomes RTL: the architecture (unrolled or
folded), the folding of each layer, each layer's datapath, the pipelining and
the primitive family. It round-trips to JSON, gives a stable :meth:`key`,
and :func:`hwgen.generate_rtl` takes it. ``rtl.json`` records the design it
was generated from, fully resolved (every layer's folding and datapath), so
the same RTL can be generated again from it alone.

No torch and no Amaranth here: this is the integer side.
"""
import hashlib
import json
from dataclasses import dataclass, field

from ..errors import HwgenError

__all__ = ["ARCHS", "DATAPATHS", "FAMILIES", "DEFAULT_TARGET_CYCLES", "Design"]

ARCHS = ("unrolled", "folded")
DATAPATHS = ("planes", "direct")
#: Primitive families: ``generic`` (portable Verilog: kept ``+`` trees that
#: every synthesis target maps) and ``xc7`` (7-series primitives in the
#: popcounts; only Yosys's xc7 flow maps them).
FAMILIES = ("generic", "xc7")
#: Clocks per inference that a folded design aims at where no folding is given.
DEFAULT_TARGET_CYCLES = 64


@dataclass(frozen=True)
class Design:
    """How an artifact becomes RTL.

    * ``arch``: ``"unrolled"`` (constant weights in logic, one inference per
      clock) or ``"folded"`` (PE x SIMD lanes, weights in ROM).
    * ``pipeline``: a register every ``pipeline`` adder levels inside each
      layer (folded: each lane); 0 = none.
    * ``family``: ``"generic"`` portable RTL, or ``"xc7"`` 7-series bit heaps
      (synthesizes for the xc7 target only).
    * ``datapaths``: one of :data:`DATAPATHS` for every layer, or a
      ``{layer: kind}`` mapping (unnamed layers: ``"planes"``).
    * ``folding`` (folded only): ``{layer: (pe, simd)}``, or ``None`` for a
      conv layer on its constant-weight window datapath. Layers it does not
      name are folded to stream one inference every ``target_cycles`` clocks
      (default :data:`DEFAULT_TARGET_CYCLES`); a design that names every
      layer is used as it is.
    """
    arch: str = "unrolled"
    pipeline: int = 0
    family: str = "generic"
    datapaths: object = "planes"
    folding: dict = field(default_factory=dict)
    target_cycles: int = None

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise HwgenError(f"design arch must be one of {', '.join(ARCHS)}, not {self.arch!r}")
        if isinstance(self.pipeline, bool) or not isinstance(self.pipeline, int) or self.pipeline < 0:
            raise HwgenError(f"design pipeline must be an integer >= 0 (adder levels per register), "
                             f"not {self.pipeline!r}")
        if self.family not in FAMILIES:
            raise HwgenError(f"design family must be one of {', '.join(FAMILIES)}, not {self.family!r}")
        kinds = [self.datapaths] if isinstance(self.datapaths, str) else \
            list(dict(self.datapaths).values()) if isinstance(self.datapaths, dict) else None
        if kinds is None or not all(k in DATAPATHS for k in kinds):
            raise HwgenError(f"design datapaths must be one of {', '.join(DATAPATHS)} or a {{layer: kind}} "
                             f"mapping of them, not {self.datapaths!r}")
        if not isinstance(self.datapaths, str):
            object.__setattr__(self, "datapaths", dict(sorted(self.datapaths.items())))
        if not isinstance(self.folding, dict):
            raise HwgenError(f"design folding must be a {{layer: (pe, simd)}} mapping, not {self.folding!r}")
        folding = {}
        for name, fold in sorted(self.folding.items()):
            ok = fold is None or (isinstance(fold, (tuple, list)) and len(fold) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in fold))
            if not ok:
                raise HwgenError(f"design folding of {name!r} must be (pe, simd) with positive integers, or "
                                 f"None (a conv layer on constants), not {fold!r}")
            folding[str(name)] = None if fold is None else tuple(fold)
        object.__setattr__(self, "folding", folding)
        if self.arch == "unrolled" and (folding or self.target_cycles is not None):
            raise HwgenError("design folding and target_cycles apply to arch 'folded'")
        if self.target_cycles is not None and (isinstance(self.target_cycles, bool) or
                                               not isinstance(self.target_cycles, int) or self.target_cycles < 2):
            raise HwgenError(f"design target_cycles must be an integer >= 2, not {self.target_cycles!r}")

    @classmethod
    def of(cls, artifact, *, folding=None, datapaths=None, pipeline=0, family="generic"):
        """The resolved design of ``artifact`` with ``folding`` (None:
        unrolled; else one ``(pe, simd)`` or None per layer) and
        ``datapaths`` (one kind per layer; None: all bit-planes): every
        layer named."""
        names = [layer.name for layer in artifact.layers]
        return cls(arch="unrolled" if folding is None else "folded", pipeline=int(pipeline), family=family,
                   datapaths=dict(zip(names, datapaths or ["planes"] * len(names))),
                   folding={} if folding is None else dict(zip(names, folding)))

    def datapath_list(self, artifact):
        """One datapath kind per layer of ``artifact``, in order."""
        names = [layer.name for layer in artifact.layers]
        if isinstance(self.datapaths, str):
            return [self.datapaths] * len(names)
        unknown = sorted(set(self.datapaths) - set(names))
        if unknown:
            raise HwgenError(f"design datapaths name {', '.join(unknown)}, which the artifact does not have "
                             f"(layers: {', '.join(names)})")
        return [self.datapaths.get(name, "planes") for name in names]

    def to_dict(self):
        """The design as plain JSON values (:meth:`from_dict` reads it back)."""
        return {"arch": self.arch, "pipeline": self.pipeline, "family": self.family,
                "datapaths": self.datapaths if isinstance(self.datapaths, str) else dict(self.datapaths),
                "folding": {k: None if v is None else list(v) for k, v in self.folding.items()},
                "target_cycles": self.target_cycles}

    @classmethod
    def from_dict(cls, data):
        """The design that :meth:`to_dict` gave; unknown keys are an error."""
        if not isinstance(data, dict):
            raise HwgenError(f"a design must be a JSON object, not {type(data).__name__}")
        unknown = sorted(set(data) - {"arch", "pipeline", "family", "datapaths", "folding", "target_cycles"})
        if unknown:
            raise HwgenError(f"a design has no setting {', '.join(map(repr, unknown))}")
        folding = data.get("folding", {})
        if isinstance(folding, dict):
            folding = {k: tuple(v) if isinstance(v, list) else v for k, v in folding.items()}
        return cls(**{**data, "folding": folding})

    def to_json(self):
        """Canonical JSON text: equal designs give equal text."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise HwgenError(f"a design is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def key(self):
        """A stable 16-hex-digit name of the design (of its canonical JSON)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]
