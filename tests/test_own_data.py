"""A user's own arrays: ``hwgen sim --inputs`` and ``hwgen train`` / ``flow
--train --test`` on files this test writes, and one clear line (exit code 2,
no traceback) for every kind of bad array."""
import json

import numpy as np
import pytest

from conftest import hwgen
from hwgen.core import vectors
from hwgen.errors import HwgenError


def _split(data, n_train=400):
    return (data.x_train[:n_train], data.y_train[:n_train]), (data.x_test, data.y_test)


@pytest.fixture(scope="module")
def arrays(tmp_path_factory):
    """digits as the user's own files, in each format: train.npz, test.csv,
    x.npy + y.npy."""
    from hwgen.training.data import load_dataset
    root = tmp_path_factory.mktemp("own")
    (xt, yt), (xs, ys) = _split(load_dataset("digits"))
    np.savez(root / "train.npz", x=xt.astype(np.uint8), y=yt)
    with open(root / "test.csv", "w") as f:
        f.write("label," + ",".join(f"p{i}" for i in range(64)) + "\n")
        for x, y in zip(xs, ys):
            f.write(f"{y}," + ",".join(map(str, x)) + "\n")
    np.save(root / "x.npy", xs.reshape(-1, 1, 8, 8).astype(np.int16))   # images, [N, C, H, W]
    np.save(root / "y.npy", ys.astype(np.int32))
    return root


def _one_line_error(proc, needle, code=2):
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("hwgen: error: ") and needle in last, proc.stderr


def test_read_vectors_takes_every_documented_format(arrays):
    x1, y1 = vectors.read_vectors(arrays / "test.csv")
    x2, y2 = vectors.read_vectors(arrays / "x.npy", arrays / "y.npy")
    x2, y2 = vectors.check_vectors(x2, y2, input_bits=5, features=64, image_shape=(1, 8, 8), n_classes=10)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2) and x2.dtype == np.int64
    x3, y3 = vectors.read_vectors(arrays / "train.npz")
    assert x3.shape == (400, 64) and y3.shape == (400,)
    x4, y4 = vectors.read_vectors(arrays / "x.npy")
    assert y4 is None and x4.shape == (360, 1, 8, 8)


def test_flow_trains_and_verifies_on_the_users_own_files(arrays, tmp_path):
    proc = hwgen("flow", "--train", arrays / "train.npz", "--test", f"{arrays / 'x.npy'},{arrays / 'y.npy'}",
                 "--hidden", "8", "--epochs", "5", "--target", "generic", "--no-timing", "-o", tmp_path / "f")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "f" / "report.json").read_text())
    assert report["dataset"] == "user" and report["bitexact"]["mismatches"] == 0
    assert report["bitexact"]["vectors"] == 360
    data = report["data"]
    assert data["input_bits"] == 5 and data["classes"] == 10 and data["input_shape"] == [1, 8, 8]
    assert [f["split"] for f in data["files"]] == ["train", "test", "test"]
    for f in data["files"]:
        assert f["sha256"] == vectors.sha256(f["path"])
    assert report["config"]["data"]["train"] == str(arrays / "train.npz")
    assert report["training"]["dataset"] == "user"
    # the same flow again from the config the report embeds reads the same files
    (tmp_path / "flow.json").write_text(json.dumps(report["config"]))
    again = hwgen("flow", "--config", tmp_path / "flow.json", "-o", tmp_path / "g")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "g" / "model.hwgen").read_bytes() == (tmp_path / "f" / "model.hwgen").read_bytes()


def test_sim_checks_the_rtl_on_the_users_own_vectors(digits_run, arrays, tmp_path):
    proc = hwgen("sim", digits_run["root"] / "model.hwgen", "--rtl", digits_run["rtl"], "--inputs",
                 arrays / "test.csv")
    assert proc.returncode == 0, proc.stderr
    expected = float((digits_run["model"].predict(digits_run["data"].x_test).argmax(1)
                      == digits_run["data"].y_test).mean())
    assert f"verilator: 360 vectors, 0 mismatches, accuracy {expected:.4f} on the labels" in proc.stdout
    assert "360 vectors from " in proc.stderr and "test.csv (sha256 " in proc.stderr


def _bad_arrays(root):
    """(file written, labels file or None, the words the error must contain)."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 17, size=(20, 64))
    y = rng.integers(0, 10, size=20)
    cases = {
        "features": (x[:, :60], y, "have shape [20, 60]; the model takes [N, 64]"),
        "range": (np.where(np.arange(64) == 3, 40, x), y, "must lie within 0..31 (5-bit unsigned); found 40 at [0, 3]"),
        "negative": (np.where(np.arange(64) == 0, -1, x), y, "must lie within 0..31"),
        "floats": (x.astype(np.float32), y, "are floats (float32)"),
        "nan": (np.where(np.arange(64) == 5, np.nan, x.astype(float)), y, "contain NaN (at (0, 5))"),
        "empty": (x[:0], y[:0], "are empty"),
        "labels": (x, np.where(np.arange(20) == 2, 10, y), "must lie within 0..9 (the model has 10 classes); found 10 at 2"),
        "length": (x, y[:19], "20 inputs but 19 labels"),
        "label-floats": (x, y.astype(float), "labels are integers"),
    }
    out = {}
    for name, (xa, ya, needle) in cases.items():
        np.save(root / f"{name}.x.npy", xa)
        np.save(root / f"{name}.y.npy", ya)
        out[name] = (root / f"{name}.x.npy", root / f"{name}.y.npy", needle)
    return out


BAD = ["features", "range", "negative", "floats", "nan", "empty", "labels", "length", "label-floats"]


@pytest.mark.parametrize("case", BAD)
def test_sim_refuses_each_bad_array_in_one_line(digits_run, tmp_path, case):
    x, y, needle = _bad_arrays(tmp_path)[case]
    proc = hwgen("sim", digits_run["root"] / "model.hwgen", "--rtl", digits_run["rtl"], "--inputs", x,
                 "--labels", y)
    _one_line_error(proc, needle)
    assert "building" not in proc.stderr          # refused before any simulator starts


@pytest.mark.parametrize("case", ["features", "floats", "nan", "empty", "length", "label-floats"])
def test_train_refuses_each_bad_array_in_one_line(tmp_path, arrays, case):
    x, y, needle = _bad_arrays(tmp_path)[case]
    proc = hwgen("train", "--train", f"{x},{y}", "--test", arrays / "test.csv", "-o", tmp_path / "m.pt")
    if case == "features":     # the training split sets the shape; the test split must follow it
        proc = hwgen("train", "--train", arrays / "train.npz", "--test", f"{x},{y}", "-o", tmp_path / "m.pt")
        needle = "the test inputs have 60 features, not the 64 of 1x1x64"
    _one_line_error(proc, needle)
    assert not (tmp_path / "m.pt").exists()


def test_train_labels_outside_the_classes_and_input_bits(tmp_path, arrays):
    x, y = vectors.read_vectors(arrays / "test.csv")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.where(np.arange(len(y)) == 7, -1, y))
    proc = hwgen("train", "--train", arrays / "train.npz", "--test", f"{tmp_path / 'x.npy'},{tmp_path / 'y.npy'}",
                 "-o", tmp_path / "m.pt")
    _one_line_error(proc, "must be >= 0; found -1")
    proc = hwgen("train", "--train", arrays / "train.npz", "--test", arrays / "test.csv", "--input-bits", "4",
                 "-o", tmp_path / "m.pt")
    _one_line_error(proc, "must lie within 0..15 (4-bit unsigned)")


@pytest.mark.parametrize("write,needle", [
    (lambda p: p.write_text("1,2,3\n4,5\n"), "the rows have different lengths"),
    (lambda p: p.write_text("label,a\n1,x\n"), "line 2: 'x' is not an integer"),
    (lambda p: p.write_text(""), "holds no examples"),
])
def test_malformed_csv_files(tmp_path, write, needle):
    path = tmp_path / "d.csv"
    write(path)
    with pytest.raises(HwgenError, match=needle):
        vectors.read_vectors(path)


def test_unreadable_and_pickled_files(tmp_path):
    (tmp_path / "x.npy").write_bytes(b"not numpy")
    with pytest.raises(HwgenError, match="not a readable .npy file"):
        vectors.read_vectors(tmp_path / "x.npy")
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(HwgenError, match="without pickle"):
        vectors.read_vectors(tmp_path / "o.npy")
    np.savez(tmp_path / "n.npz", inputs=np.zeros((2, 2)))
    with pytest.raises(HwgenError, match="has no array 'x'"):
        vectors.read_vectors(tmp_path / "n.npz")
    with pytest.raises(HwgenError, match="unknown data format .txt"):
        (tmp_path / "d.txt").write_text("1")
        vectors.read_vectors(tmp_path / "d.txt")
    with pytest.raises(HwgenError, match="does not exist"):
        vectors.read_vectors(tmp_path / "missing.npy")
