"""Regression tests for the defects a hostile-user review found (issue 30):
each failed before its fix."""
import hashlib
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from hwgen import rtl
from hwgen.core import artifact
from hwgen.errors import HwgenError
from hwgen.core.artifact import ArtifactError

from conftest import assert_clean_error, hwgen, random_cnn, random_model
from test_artifact import _rewrite as _rebuild


def _model():
    return random_model(np.random.default_rng(0), [6, 5, 3], input_bits=2)


def _resign(desc, files, raw):
    files[desc["file"]] = bytes(raw)
    desc["sha256"] = hashlib.sha256(bytes(raw)).hexdigest()


@pytest.mark.parametrize("field,layer", [("threshold", 0), ("bias", 1)])
def test_int64_min_threshold_and_bias_are_refused(field, layer):
    """np.abs(-2^63) is -2^63, which passed the |x| < 2^40 check; the golden
    model then overflowed."""
    def edit(manifest, files):
        desc = manifest["layers"][layer]["arrays"][field]
        raw = bytearray(files[desc["file"]])
        raw[0:8] = np.int64(-2 ** 63).tobytes()
        _resign(desc, files, raw)
    with pytest.raises(ArtifactError, match=f"a {field} exceeds 2\\^40"):
        artifact.loads(_rebuild(artifact.dumps(_model()), edit))


def test_shape_whose_int64_product_wraps_is_refused():
    """[2^24, 2^24, 2^16] is 2^64 elements: its int64 product wrapped to 0."""
    def edit(manifest, files):
        manifest["layers"][0]["arrays"]["threshold"]["shape"] = [1 << 24, 1 << 24, 1 << 16]
    with pytest.raises(ArtifactError, match="more than the .* an artifact array may hold"):
        artifact.loads(_rebuild(artifact.dumps(_model()), edit))


def test_zip_bomb_is_refused_before_it_is_decompressed(tmp_path):
    """A 200 MB member of zeros compresses to ~200 kB; its declared size is
    checked against its shape before it is read, so the loader stays small."""
    def edit(manifest, files):
        desc = manifest["layers"][0]["arrays"]["threshold"]
        _resign(desc, files, b"\0" * (200 << 20))
    blob = _rebuild(artifact.dumps(_model()), edit, zipfile.ZIP_DEFLATED)
    assert len(blob) < 1 << 20
    path = tmp_path / "bomb.hwgen"
    path.write_bytes(blob)
    # the peak resident memory of that process alone (VmHWM; ru_maxrss would carry over the
    # parent's peak through fork and exec)
    code = ("import sys\nfrom hwgen.core import artifact\n"
            "try:\n    artifact.load(sys.argv[1])\nexcept artifact.ArtifactError as e:\n    print(e)\n"
            "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))\n")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    lines = proc.stdout.strip().splitlines()
    assert "holds 209715200 bytes, shape [5] needs 40" in lines[0], proc.stdout + proc.stderr
    assert int(lines[-1]) < 512 * 1024      # KiB: the member was never inflated


def test_fan_in_zero_is_refused():
    def edit(manifest, files):
        layer = manifest["layers"][0]
        for name, desc in layer["arrays"].items():
            shape = desc["shape"]
            if name in ("nbits",):
                desc["shape"] = [shape[0], 0]
            elif name == "planes":
                desc["shape"] = [shape[0], shape[1], 0]
            else:
                continue
            _resign(desc, files, b"")
        layer["in_features"] = 0
        manifest["input_features"] = 0
    with pytest.raises(ArtifactError, match="must be at least 1|fan-in 0|no inputs"):
        artifact.loads(_rebuild(artifact.dumps(_model()), edit))


def test_rtl_json_sources_cannot_leave_the_rtl_directory(tmp_path):
    model = _model()
    artifact.save(model, tmp_path / "m.hwgen")
    rtl.generate(model, tmp_path / "rtl")
    manifest = json.loads((tmp_path / "rtl" / "rtl.json").read_text())
    manifest["sources"] = ["../../../../etc/hostname"]
    (tmp_path / "rtl" / "rtl.json").write_text(json.dumps(manifest))
    for verb in (["sim"], ["equiv"]):
        proc = hwgen(*verb, tmp_path / "m.hwgen", "--rtl", tmp_path / "rtl")
        assert_clean_error(proc, "which is not a file of the RTL directory", code=2)


@pytest.mark.parametrize("argv,needle", [
    (["train", "--lr", "nan"], "--lr"), (["train", "--lr", "-1"], "--lr"),
    (["train", "--threads", "-1"], "--threads"), (["train", "--epochs", "0"], "--epochs"),
    (["train", "--dropout", "1.5"], "--dropout"),
    (["export", "x.pt", "-o", "x.hwgen", "--frac-bits", "100"], "--frac-bits"),
    (["sim", "m.hwgen", "--rtl", "r", "--limit", "-1"], "--limit"),
    (["sim", "m.hwgen", "--rtl", "r", "--backpressure", "inf"], "--backpressure"),
    (["sim", "m.hwgen", "--rtl", "r", "--boundary-variants", "0"], "--boundary-variants"),
    (["equiv", "m.hwgen", "--rtl", "r", "--timeout", "0"], "--timeout"),
])
def test_out_of_range_options_are_usage_errors(argv, needle):
    """Refused at parse time (exit 2, argparse's one line), before anything runs."""
    proc = hwgen(*argv)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert needle in proc.stderr.strip().splitlines()[-1]


def test_edited_verilog_is_refused_unless_allowed(tmp_path):
    model = _model()
    artifact.save(model, tmp_path / "m.hwgen")
    rtl.generate(model, tmp_path / "rtl")
    path = tmp_path / "rtl" / "hwgen_top.v"
    path.write_text(path.read_text() + "\n// edited\n")
    proc = hwgen("equiv", tmp_path / "m.hwgen", "--rtl", tmp_path / "rtl")
    assert_clean_error(proc, "is not the Verilog rtl.json records", code=2)
    proc = hwgen("equiv", tmp_path / "m.hwgen", "--rtl", tmp_path / "rtl", "--allow-edited")
    assert proc.returncode == 0, proc.stderr        # a comment changes nothing: still proven
    assert "--allow-edited:" in proc.stderr and "3 of 3 parts proven" in proc.stdout


def test_designs_beyond_the_size_limits_are_refused_before_generation(tmp_path):
    """A conv layer on a 300 x 300 map, and an unrolled 4096-1100-10 MLP, stop
    at once with the figure, the limit and the override, instead of running
    Amaranth for minutes (issue 30: a 1x4096x4096 conv ended in a traceback)."""
    rng = np.random.default_rng(0)
    cnn = random_cnn(rng, (1, 300, 300), [(1, (3, 3), 3)], [4], input_bits=2, max_bits=1)
    artifact.save(cnn, tmp_path / "cnn.hwgen")
    proc = hwgen("rtl", tmp_path / "cnn.hwgen", "-o", tmp_path / "rtl")
    assert_clean_error(proc, "layer conv0 has 90,000 pixels in its 300x300 input map")
    assert "HWGEN_SIZE_LIMITS=off" in proc.stderr and not (tmp_path / "rtl").exists()
    wide = random_model(rng, [4096, 1100, 10], input_bits=1, max_bits=1, prune=0.0)
    with pytest.raises(HwgenError, match=r"4,516,600 weight bits.*--arch folded"):
        rtl.generate(wide, tmp_path / "wide")
    rtl.check_size(wide, folding=[(1, 1), (1, 1)])          # folded: within the limits
    rtl.check_size(wide, size_limits=False)                 # the override
