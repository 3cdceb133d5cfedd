"""Everything one ``hwgen flow`` run does, as one value: :class:`FlowConfig`.

It round-trips to JSON (``hwgen flow --config flow.json``), and
``report.json`` embeds it under ``config``, so any run can be repeated
exactly from its report. No torch here; the training options are checked
when the flow trains.
"""
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from .core.design import Design
from .errors import HwgenError

__all__ = ["FlowConfig"]

_KEYS = ("train", "data", "data_dir", "frac_bits", "design", "datapath", "lut_budget", "area_target", "targets",
         "simulator", "timing", "timing_effort", "prove")


@dataclass(frozen=True)
class FlowConfig:
    """One flow: train, export, RTL, synthesis, simulation, report.

    * ``train``: training options (those of ``hwgen train``, docs/training.md:
      ``dataset``, ``bits``, ``hidden``, ``epochs``, ``seed``, ...); the ones
      left out take their defaults.
    * ``data``: your own data instead of ``train["dataset"]``: ``{"train":
      DATA, "test": DATA, "input_bits": N or None, "input_shape": [C, H, W]
      or None}``, each ``DATA`` a ``FILE.npz``, ``FILE.csv`` or
      ``X.npy,Y.npy`` (:func:`hwgen.training.data.user_dataset`); None: the
      named dataset.
    * ``data_dir``: where the dataset's files are (fashion-mnist).
    * ``frac_bits``: the export's scale fraction bits.
    * ``design``: the :class:`~hwgen.core.design.Design` (architecture, folding,
      pipelining, family; its ``datapaths`` unless ``datapath`` is ``"auto"``).
    * ``datapath``: ``"auto"`` measures each layer's two datapaths on
      ``area_target`` and keeps the smaller; None uses the design's.
    * ``lut_budget``: folded only: the fastest folding within that many
      ``area_target`` LUTs instead of the design's ``target_cycles``.
    * ``targets``: synthesis targets (default: generic and ice40, or the
      design's family target); ``simulator``: ``verilator`` or ``icarus``.
    * ``timing``: place and route for Fmax: ``"auto"`` (the smallest device
      the design fits, :data:`hwgen.tools.timing.DEVICES`), a device target
      (``ice40``, ``ecp5``), or None (no place and route).
    * ``timing_effort``: ``"fast"`` (default: the electrostatic placer, not
      timing-driven, about a third of the time) or ``"full"`` (nextpnr's
      timing-driven defaults, as ``hwgen timing`` runs);
      :data:`hwgen.tools.timing.EFFORTS`.
    * ``prove``: the SAT proof of the layers under the fan-in limit
      (:func:`hwgen.prove`).
    """
    train: dict = field(default_factory=dict)
    data: dict = None
    data_dir: str = None
    frac_bits: int = 8
    design: Design = field(default_factory=Design)
    datapath: str = None
    lut_budget: int = None
    area_target: str = "ice40"
    targets: tuple = None
    simulator: str = "verilator"
    timing: str = "auto"
    timing_effort: str = "fast"
    prove: bool = True

    def __post_init__(self):
        if not isinstance(self.train, dict) or not all(isinstance(k, str) for k in self.train):
            raise HwgenError(f"flow config train must be a {{option: value}} object, not {self.train!r}")
        object.__setattr__(self, "train", dict(sorted(self.train.items())))
        if self.data is not None:
            self._check_data()
        if not isinstance(self.design, Design):
            raise HwgenError(f"flow config design must be a hwgen.Design, not {self.design!r}")
        if isinstance(self.frac_bits, bool) or not isinstance(self.frac_bits, int) or not 0 <= self.frac_bits <= 24:
            raise HwgenError(f"flow config frac_bits must be an integer within 0..24, not {self.frac_bits!r}")
        if self.datapath not in (None, "auto"):
            raise HwgenError(f"flow config datapath must be 'auto' or null (the design's), not {self.datapath!r}")
        if self.lut_budget is not None:
            if isinstance(self.lut_budget, bool) or not isinstance(self.lut_budget, int) or self.lut_budget < 1:
                raise HwgenError(f"flow config lut_budget must be a positive integer, not {self.lut_budget!r}")
            if self.design.arch != "folded":
                raise HwgenError("flow config lut_budget applies to a design with arch 'folded'")
        from .tools import targets as _targets
        _targets.get(self.area_target)
        if self.targets is None:
            default = ("generic", "ice40") if self.design.family == "generic" else (self.design.family,)
            object.__setattr__(self, "targets", default)
        if isinstance(self.targets, str) or not self.targets:
            raise HwgenError(f"flow config targets must be a non-empty list of targets, not {self.targets!r}")
        object.__setattr__(self, "targets", tuple(self.targets))
        for target in self.targets:
            _targets.get(target)
        if self.simulator not in ("verilator", "icarus"):
            raise HwgenError(f"flow config simulator must be 'verilator' or 'icarus', not {self.simulator!r}")
        devices = [name for name, t in _targets.REGISTRY.items() if t.pnr]
        if self.timing is not None and self.timing not in ("auto", *devices):
            raise HwgenError(f"flow config timing must be 'auto', {', '.join(map(repr, devices))} or null, "
                             f"not {self.timing!r}")
        if self.timing not in (None, "auto"):
            _targets.check_family(self.design.family, self.timing, "the flow config's timing")
        if self.timing_effort not in ("fast", "full"):
            raise HwgenError(f"flow config timing_effort must be 'fast' or 'full', not {self.timing_effort!r}")
        if not isinstance(self.prove, bool):
            raise HwgenError(f"flow config prove must be true or false, not {self.prove!r}")

    def _check_data(self):
        data = self.data
        keys = {"train", "test", "input_bits", "input_shape"}
        if not isinstance(data, dict) or set(data) - keys or not {"train", "test"} <= set(data):
            raise HwgenError(f"flow config data must be {{'train': DATA, 'test': DATA, 'input_bits': N or null, "
                             f"'input_shape': [C, H, W] or null}}, not {data!r}")
        if not all(isinstance(data[k], str) and data[k] for k in ("train", "test")):
            raise HwgenError("flow config data train and test must be file names (FILE.npz, FILE.csv or X.npy,Y.npy)")
        bits = data.get("input_bits")
        if bits is not None and (isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 16):
            raise HwgenError(f"flow config data input_bits must be an integer within 1..16 or null, not {bits!r}")
        shape = data.get("input_shape")
        if shape is not None and (not isinstance(shape, (list, tuple)) or len(shape) != 3 or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape)):
            raise HwgenError(f"flow config data input_shape must be [C, H, W] (positive integers) or null, "
                             f"not {shape!r}")
        if self.data_dir is not None:
            raise HwgenError("flow config data gives the data: data_dir applies to a named dataset")
        object.__setattr__(self, "data", {"train": data["train"], "test": data["test"], "input_bits": bits,
                                          "input_shape": list(shape) if shape is not None else None})

    @property
    def fold(self):
        """The folding options of :func:`hwgen.explore.budget.pick_folding` (None: unrolled)."""
        if self.design.arch == "unrolled":
            return None
        fold = {"target_cycles": self.design.target_cycles or 64, "overrides": dict(self.design.folding)}
        if self.lut_budget:
            fold["lut_budget"] = self.lut_budget
        return fold

    def with_train(self, **options):
        """A copy with these training options set."""
        return replace(self, train={**self.train, **options})

    def to_dict(self):
        return {"train": dict(self.train), "data": None if self.data is None else dict(self.data),
                "data_dir": self.data_dir, "frac_bits": self.frac_bits,
                "design": self.design.to_dict(), "datapath": self.datapath, "lut_budget": self.lut_budget,
                "area_target": self.area_target, "targets": list(self.targets), "simulator": self.simulator,
                "timing": self.timing, "timing_effort": self.timing_effort, "prove": self.prove}

    @classmethod
    def from_dict(cls, data):
        if not isinstance(data, dict):
            raise HwgenError(f"a flow config must be a JSON object, not {type(data).__name__}")
        unknown = sorted(set(data) - set(_KEYS))
        if unknown:
            raise HwgenError(f"a flow config has no setting {', '.join(map(repr, unknown))} "
                             f"(settings: {', '.join(_KEYS)})")
        kw = dict(data)
        if "design" in kw:
            kw["design"] = Design.from_dict(kw["design"])
        return cls(**kw)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise HwgenError(f"the flow config is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def read(cls, path):
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise HwgenError(f"cannot read the flow config {path}: {exc.strerror or exc}") from None
        return cls.from_json(text)
