"""Datasets, training options and `hwgen sweep` (end to end on digits)."""
import json
import os
from pathlib import Path

import numpy as np
import pytest

from hwgen.training.data import FASHION_MNIST_DIR, load_dataset
from hwgen.errors import HwgenError

from conftest import hwgen

HAVE_FASHION = Path(FASHION_MNIST_DIR, "t10k-labels-idx1-ubyte.gz").is_file()


def test_mnist5k_split_is_fixed_and_shuffled():
    d = load_dataset("mnist5k")
    assert d.x_train.shape == (4000, 784) and d.x_test.shape == (1000, 784)
    assert d.image_shape == (1, 28, 28) and d.input_bits == 8 and d.x_train.max() <= 255
    # the file is sorted by class; the split must not be
    assert len(np.unique(d.y_test[:100])) == 10
    assert np.array_equal(d.y_test, load_dataset("mnist5k").y_test)


@pytest.mark.skipif(not HAVE_FASHION and not os.environ.get("CI"),
                    reason="dataset-fashion-mnist not installed (CI installs it)")
def test_fashion_mnist_official_split():
    d = load_dataset("fashion-mnist")
    assert d.x_train.shape == (60000, 784) and d.x_test.shape == (10000, 784)
    assert d.x_train.dtype == np.int64 and 0 <= d.x_train.min() and d.x_train.max() == 255
    assert np.bincount(d.y_test).tolist() == [1000] * 10


def test_missing_fashion_mnist_names_the_package(tmp_path):
    with pytest.raises(HwgenError, match="dataset-fashion-mnist"):
        load_dataset("fashion-mnist", data_dir=tmp_path)
    r = hwgen("train", "--dataset", "fashion-mnist", "--data-dir", tmp_path, "-o", tmp_path / "m.pt")
    assert r.returncode == 3      # not installed
    assert "dataset-fashion-mnist" in r.stderr and "Traceback" not in r.stderr


def test_corrupt_idx_file_is_a_clear_error(tmp_path):
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        (tmp_path / name).write_bytes(b"not gzip")
    with pytest.raises(HwgenError, match="cannot read"):
        load_dataset("fashion-mnist", data_dir=tmp_path)


@pytest.mark.parametrize("args,needle", [
    (["--quantizer", "bnn+++"], "invalid choice"),
    (["--selection", "largest"], "invalid choice"),
    (["--model", "cnn", "--conv", "c8,q"], "conv spec"),
    (["--model", "cnn", "--conv", "c8,p,c8,p,c8"], "too small"),
    (["--freeze-after", "2"], "freeze_after"),
    (["--recompute-every", "0"], "recompute_every"),
    (["--dropout", "1.5"], "dropout"),
    (["--act-bits", "5"], "act_bits"),
    (["--model", "transformer", "--heads", "0"], "at least 1"),
    (["--model", "transformer", "--dim", "30", "--heads", "4"], "not divisible"),
])
def test_bad_training_options_are_clear_errors(tmp_path, args, needle):
    r = hwgen("train", "--epochs", "1", *args, "-o", tmp_path / "m.pt")
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr


def test_all_cores_is_the_default():
    from hwgen.training.train import DEFAULTS, default_threads
    assert DEFAULTS["threads"] == 0 and default_threads() >= 1


def test_sweep_end_to_end_and_resume(tmp_path):
    out = tmp_path / "sweep"
    args = ["sweep", "--epochs", "2", "--hidden", "8", "--bits", "1", "1.4", "--quantizer", "bnn", "bnn++",
            "--selection", "middle-out", "random", "--threads", "1", "-o", out]
    r = hwgen(*args)
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "sweep.json").read_text())
    # 1 bit: one run per quantizer (selection cannot matter); 1.4 bits: both rules
    assert len(summary["runs"]) == 6 and len(summary["rows"]) == 6
    for run in summary["runs"]:
        assert 0.1 <= run["integer_accuracy"] <= 1.0
        assert run["avg_bits"] == pytest.approx(1.0 if run["bits"] == "1" else 1.4, abs=0.01)
        assert (out / "runs" / f"{run['key']}.pt").is_file()
    md = (out / "sweep.md").read_text()
    assert md.count("\n| 1.40 |") == 4 and "Comparisons" in md
    assert "bit selection (bits 1.4, quantizer bnn, scale tensor): " in md
    assert (out / "accuracy_vs_bits.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # resume: nothing is retrained, a removed run is redone, results are kept
    (out / "runs" / f"{summary['runs'][0]['key']}.json").unlink()
    r = hwgen(*args)
    assert r.returncode == 0 and "5 already done, 1 to train" in r.stderr
    again = json.loads((out / "sweep.json").read_text())
    assert [x["integer_accuracy"] for x in again["runs"]] == [x["integer_accuracy"] for x in summary["runs"]]
    # the same grid point under other training settings is refused, not silently mixed or dropped
    r = hwgen(*args, "--mask-group", "neuron")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "runs/mlp_1x1_bnn_homog_tensor_s0.json was trained with mask_group = None, not 'neuron': sweep into another -o" in r.stderr


def test_sweep_synth_records_area_plots_it_and_resumes(tmp_path):
    """`hwgen sweep --synth generic`: each run's RTL synthesized, its area in
    the run's JSON, the summary's columns, the 1.4-vs-2-bit area ratio and
    the two plots; a rerun synthesizes nothing, a new design only itself."""
    out = tmp_path / "sweep"
    args = ["sweep", "--epochs", "2", "--hidden", "6", "--bits", "1", "1.4", "2", "--threads", "1",
            "--synth", "generic", "-o", out]
    r = hwgen(*args)
    assert r.returncode == 0, r.stderr
    assert "sweep: 3 syntheses to run" in r.stderr
    summary = json.loads((out / "sweep.json").read_text())
    area = {row["bits"]: row["hardware"]["generic_unrolled_p0"]["area"] for row in summary["rows"]}
    # unrolled: more weight bits, more datapath (1.4 bits per weight need not be under 2 bits: a
    # homogeneous pixel layer shares its input sums, docs/results.md)
    assert 0 < area["1"] < min(area["1.4"], area["2"])
    for run in summary["runs"]:
        hw = run["hardware"]["generic_unrolled_p0"]
        assert hw["metric"] == "cells" and hw["total"]["cells"] == hw["area"] and hw["interval"] == 1
        assert (out / "runs" / f"{run['key']}.hwgen").is_file()
    md = (out / "sweep.md").read_text()
    assert "| generic_unrolled_p0 cells |" in md
    ratio = area["1.4"] / area["2"]
    assert (f"area of 1.40-bit middle-out / 2-bit homogeneous (bnn, tensor scales, generic_unrolled_p0 cells): "
            f"{ratio:.3f}") in md
    for name in ("area_vs_bits.png", "accuracy_vs_area.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = hwgen(*args)
    assert r.returncode == 0 and "syntheses to run" not in r.stderr
    r = hwgen(*args, "--arch", "folded", "--target-cycles", "16")
    assert r.returncode == 0 and "sweep: 3 syntheses to run" in r.stderr
    rows = json.loads((out / "sweep.json").read_text())["rows"]
    assert all({"generic_unrolled_p0", "generic_folded16_p0"} <= set(row["hardware"]) for row in rows)
    assert all(row["hardware"]["generic_folded16_p0"]["interval"] <= 16 for row in rows)


def test_sweep_hardware_options_need_synth(tmp_path):
    r = hwgen("sweep", "--arch", "folded", "-o", tmp_path / "s")
    assert r.returncode == 2 and "add --synth TARGET" in r.stderr and "Traceback" not in r.stderr


def test_pareto_front():
    from hwgen.explore.sweep import pareto
    pts = [(10, 80.0), (20, 90.0), (15, 79.0), (20, 85.0), (30, 90.0), (25, 95.0), (10, 70.0)]
    assert pareto(pts) == [(10, 80.0), (20, 90.0), (25, 95.0)]


def test_augmentation_keeps_integer_pixels_and_only_moves_them():
    import torch
    from hwgen.training.train import augment_batch
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 1, 12, 12), generator=g).float()
    x[:, :, :2, :] = 0
    x[:, :, -2:, :] = 0
    x[:, :, :, :2] = 0
    x[:, :, :, -2:] = 0                        # content inside the border: shifts lose nothing
    flat = x.reshape(64, -1)
    assert torch.equal(augment_batch(flat, (1, 12, 12), "none", g), flat)
    for mode in ("shift", "shift+flip"):
        out = augment_batch(flat, (1, 12, 12), mode, g)
        assert torch.equal(out, out.round()) and out.shape == flat.shape
        # the same pixel values, moved: per-image sums and sorted values are unchanged
        assert torch.equal(out.sort(dim=1).values, flat.sort(dim=1).values)
    moved = (augment_batch(flat, (1, 12, 12), "shift", g) != flat).any(dim=1).float().mean()
    assert moved > 0.8    # 24 of 25 shifts move an image


@pytest.mark.parametrize("args", [["--model", "cnn", "--act-bits", "2"], ["--act-bits", "2"],
                                  ["--model", "transformer"]])
def test_flow_refuses_what_has_no_rtl_before_training(tmp_path, args):
    r = hwgen("flow", *args, "-o", tmp_path / "out")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--model mlp or cnn with --act-bits 1 only" in r.stderr and "training on" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_sweep_runs_a_cnn_and_records_integer_accuracy(tmp_path):
    out = tmp_path / "cnn"
    r = hwgen("sweep", "--model", "cnn", "--conv", "c4,p", "--hidden", "8", "--epochs", "2", "--bits", "1.4",
              "--scale", "channel", "--act-bits", "2", "--threads", "1", "-o", out)
    assert r.returncode == 0, r.stderr
    (run,) = json.loads((out / "sweep.json").read_text())["runs"]
    assert run["config"]["model"] == "cnn" and run["config"]["act_bits"] == 2
    assert 0.3 <= run["integer_accuracy"] <= 1.0 and abs(run["integer_accuracy"] - run["float_accuracy"]) < 0.05


def test_sweep_refuses_transformers(tmp_path):
    r = hwgen("sweep", "--model", "transformer", "-o", tmp_path / "t")
    assert r.returncode == 2 and "whole integer networks" in r.stderr and "Traceback" not in r.stderr
