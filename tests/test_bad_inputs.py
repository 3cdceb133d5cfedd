"""Every subcommand against a table of ordinary mistakes: each ends in one
error line naming the problem, no traceback, and the documented exit code
(2: usage error or bad input; docs/cli.md, "Exit codes"). Nothing here
needs a simulator or a trained network: each case is refused before the
real work starts."""
import hashlib

import numpy as np
import pytest

from hwgen import rtl
from hwgen.core import artifact

from conftest import hwgen, random_model

#: (argv, what the error line must name); files are made by the ``files`` fixture
CASES = [
    ([], "the following arguments are required: COMMAND"),
    (["nosuch"], "invalid choice: 'nosuch'"),
    (["train", "-o", "t.pt", "--dataset", "nosuch"], "unknown dataset 'nosuch'"),
    (["train", "-o", "t.pt", "--train", "missing.npz", "--test", "missing.npz"], "missing.npz"),
    (["train", "-o", "t.pt", "--bits", "nonsense"], "nonsense"),
    (["train", "-o", "t.pt", "--lr", "nan"], "--lr"),
    (["train"], "-o/--output"),
    (["export", "missing.pt", "-o", "x.hwgen"], "checkpoint missing.pt does not exist"),
    (["export", "garbage.pt", "-o", "x.hwgen"], "cannot load checkpoint garbage.pt"),
    (["export", "garbage.pt", "-o", "x.hwgen", "--frac-bits", "100"], "--frac-bits"),
    (["import", "missing.onnx", "-o", "x.hwgen"], "ONNX model missing.onnx does not exist"),
    (["import", "garbage.hwgen", "-o", "x.hwgen"], "garbage.hwgen is not a readable ONNX model"),
    (["import", "m.hwgen", "-o", "x.hwgen"], "is not a readable ONNX model"),
    (["export-onnx", "missing.hwgen", "-o", "x.onnx"], "artifact missing.hwgen does not exist"),
    (["export-onnx", "garbage.hwgen", "-o", "x.onnx"], "invalid artifact garbage.hwgen"),
    (["export-onnx", "m.hwgen", "-o", "afile/x.onnx"], "afile is a file, not a directory"),
    (["export-onnx", "m.hwgen", "-o", "empty"], "empty: it is a directory, not a file"),
    (["export-onnx", "m.hwgen", "-o", "nodir/x.onnx"], "directory nodir does not exist"),
    (["rtl", "missing.hwgen", "-o", "r2"], "artifact missing.hwgen does not exist"),
    (["rtl", "garbage.hwgen", "-o", "r2"], "invalid artifact garbage.hwgen"),
    (["rtl", "m.hwgen", "-o", "afile"], "afile is a file, not a directory"),
    (["rtl", "m.hwgen", "-o", "afile/sub"], "afile is a file, not a directory"),
    (["rtl", "m.hwgen", "-o", "r2", "--arch", "nosuch"], "--arch"),
    (["rtl", "m.hwgen", "-o", "r2", "--max-fan-in", "0"], "--max-fan-in"),
    (["synth", "empty"], "rtl.json is missing"),
    (["synth", "nosuchdir"], "nosuchdir does not exist"),
    (["synth", "rtl", "--target", "nosuch"], "--target"),
    (["timing", "empty"], "rtl.json is missing"),
    (["timing", "rtl", "--timeout", "-5"], "--timeout"),
    (["timing", "rtl", "--freq", "0"], "--freq"),
    (["sim", "m.hwgen", "--rtl", "empty"], "rtl.json is missing"),
    (["sim", "missing.hwgen", "--rtl", "rtl"], "artifact missing.hwgen does not exist"),
    (["sim", "garbage.hwgen", "--rtl", "rtl"], "invalid artifact garbage.hwgen"),
    (["sim", "m.hwgen", "--rtl", "rtl", "--inputs", "float.npy"], "are floats"),
    (["sim", "m.hwgen", "--rtl", "rtl", "--inputs", "shape.npy"], "have shape [3, 7]"),
    (["sim", "m.hwgen", "--rtl", "rtl", "--inputs", "range.npy"], "must lie within 0..3"),
    (["sim", "m.hwgen", "--rtl", "rtl", "--inputs", "missing.npy"], "missing.npy"),
    (["sim", "m.hwgen", "--rtl", "rtl", "--labels", "float.npy"], "--labels goes with --inputs"),
    (["sim", "m.hwgen", "--rtl", "rtl", "--limit", "0"], "--limit"),
    (["sim", "m.hwgen", "--rtl", "rtl", "--simulator", "nosuch"], "--simulator"),
    (["sim", "other.hwgen", "--rtl", "rtl"], "--allow-edited"),
    (["equiv", "m.hwgen", "--rtl", "empty"], "rtl.json is missing"),
    (["equiv", "m.hwgen", "--rtl", "rtl", "--method", "nosuch"], "--method"),
    (["equiv", "other.hwgen", "--rtl", "rtl"], "--allow-edited"),
    (["flow", "--dataset", "nosuch", "-o", "f2"], "unknown dataset 'nosuch'"),
    (["flow", "-o", "afile"], "afile is a file, not a directory"),
    (["flow", "-o", "f2", "--epochs", "0"], "--epochs"),
    (["sweep", "--bits", "nonsense", "-o", "s2"], "cannot parse bit mix 'nonsense'"),
    (["sweep", "-o", "afile"], "afile is a file, not a directory"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    model = random_model(np.random.default_rng(0), [6, 5, 3], input_bits=2)
    artifact.save(model, d / "m.hwgen")
    rtl.generate(model, d / "rtl", artifact_sha256=hashlib.sha256((d / "m.hwgen").read_bytes()).hexdigest())
    other = random_model(np.random.default_rng(1), [6, 5, 3], input_bits=2)
    artifact.save(other, d / "other.hwgen")
    (d / "garbage.hwgen").write_bytes(b"PK\x03\x04 not a zip")
    (d / "garbage.pt").write_bytes(b"not a checkpoint")
    (d / "afile").write_text("x")
    (d / "empty").mkdir()
    np.save(d / "float.npy", np.zeros((3, 6)))
    np.save(d / "shape.npy", np.zeros((3, 7), dtype=np.int64))
    np.save(d / "range.npy", np.full((3, 6), 9, dtype=np.int64))
    return d


@pytest.mark.parametrize("argv,needle", CASES, ids=[" ".join(a) or "(none)" for a, _ in CASES])
def test_every_subcommand_refuses_bad_input_cleanly(files, argv, needle):
    proc = hwgen(*argv, cwd=files)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines and "error:" in lines[-1], proc.stderr
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1, proc.stderr
    assert needle in lines[-1], proc.stderr
    # nothing half-made: a refused command leaves no output behind
    for out in ("r2", "f2", "s2", "x.hwgen", "t.pt"):
        assert not (files / out).exists(), out
