"""The integer golden model against the float (fake-quantized) PyTorch model."""
import math

import numpy as np
import pytest
import torch

from hwgen.core import artifact, reference
from hwgen.errors import HwgenError


def test_export_keeps_bitwidths_and_planes(digits_run):
    tm, model = digits_run["torch_model"], digits_run["model"]
    linears = [b["linear"] for b in tm.hidden] + [tm.out]
    for lin, layer in zip(linears, model.layers):
        assert np.array_equal(lin.nbits.numpy(), layer.nbits)
        _, planes = lin.binarized()
        for b, plane in enumerate(planes):
            assert np.array_equal(layer.signed_planes()[b], plane.numpy().astype(np.int64))
    assert model.avg_weight_bits() == pytest.approx(1.4, abs=0.01)


@torch.no_grad()
def assert_golden_matches_fake_quant(tm, model, x):
    """Every hidden decision agrees unless the float pre-activation lies within
    the documented rounding bound of the threshold (alpha rounding + ceil);
    final scores agree within the scale rounding bound."""
    golden = reference.infer(model, x)
    a = torch.as_tensor(x, dtype=torch.float64)
    F = model.scale_frac_bits
    total_flips = 0
    for k, (block, layer) in enumerate(zip(tm.hidden, model.layers)):
        mus, planes = block["linear"].binarized()
        ref = np.where(mus[0] > 0, mus[0], 1.0)           # per-neuron reference scale
        w_hat = sum(torch.from_numpy(mu)[:, None] * p.double() for mu, p in zip(mus, planes))
        y = a @ w_hat.T                       # float pre-activation
        bn = block["bn"]
        z = (y - bn.running_mean.double()) / torch.sqrt(bn.running_var.double() + bn.eps) \
            * bn.weight.double() + bn.bias.double()
        float_fire = (z >= 0).numpy()
        flips = float_fire != golden.activations[k].astype(bool)
        # rounding bound in Y units, per neuron
        max_in = 2 ** layer.input_bits - 1 if layer.input == "uint" else 1
        counts = [(layer.nbits >= b + 1).sum(axis=1) for b in range(layer.max_bits)]
        err = sum(np.abs(layer.alpha[:, b] - 2 ** F * mus[b] / ref) * counts[b] * max_in
                  for b in range(len(mus))) + 1
        gap = np.abs(y.numpy() * 2 ** F / ref - _float_threshold(bn, ref, F))
        assert (gap[flips] <= np.broadcast_to(err, gap.shape)[flips] + 1e-6).all()
        total_flips += flips.sum()
        a = torch.as_tensor(golden.activations[k].astype(np.int64) * 2 - 1, dtype=torch.float64)  # follow the golden path
    assert total_flips <= 0.01 * golden.activations[0].size
    mus, planes = tm.out.binarized()
    ref = mus[0].max()                         # one common scale for the argmax
    w_hat = sum(torch.from_numpy(mu)[:, None] * p.double() for mu, p in zip(mus, planes))
    s_float = (a @ w_hat.T + tm.out.bias.detach().double()).numpy()
    s_int = golden.scores * ref / 2 ** F
    layer = model.layers[-1]
    bound = sum(np.abs(layer.alpha[:, b] * ref / 2 ** F - mus[b]).max() * layer.in_features
                for b in range(len(mus)))
    assert np.abs(s_int - s_float).max() <= bound + ref / 2 ** F


def test_golden_matches_fake_quant_per_sample(digits_run):
    assert_golden_matches_fake_quant(digits_run["torch_model"], digits_run["model"], digits_run["data"].x_test)


@pytest.mark.parametrize("quantizer,selection", [("bnn+", "magnitude"), ("bnn++", "middle-out")])
def test_golden_matches_fake_quant_per_channel(quantizer, selection):
    from hwgen.training.exporter import export_model
    from hwgen.training.train import train
    tm, info = train(log=None, epochs=6, hidden=[16], scale="channel", quantizer=quantizer,
                     selection=selection, bits="1:0.5,2:0.3,3:0.2", threads=1)
    model = export_model(tm, info, info["input"]["bits"])
    assert len({tuple(r) for r in model.layers[0].alpha}) > 1   # really per channel
    from hwgen.training.data import load_dataset
    assert_golden_matches_fake_quant(tm, model, load_dataset("digits").x_test)


def _float_threshold(bn, mu_ref, frac_bits):
    mean, std = bn.running_mean.double(), torch.sqrt(bn.running_var.double() + bn.eps)
    return ((mean - bn.bias.double() * std / bn.weight.double()) * 2 ** frac_bits).numpy() / mu_ref


def test_integer_accuracy_equals_float(digits_run):
    model, data, info = digits_run["model"], digits_run["data"], digits_run["info"]
    acc = (reference.infer(model, data.x_test).pred == data.y_test).mean()
    assert acc >= 0.90
    assert abs(acc - info["float_accuracy"]) <= 0.01


def test_reference_is_integer_only(digits_run):
    res = reference.infer(digits_run["model"], digits_run["data"].x_test[:5])
    assert res.scores.dtype == np.int64 and res.pred.dtype == np.int64


@pytest.mark.parametrize("bad,needle", [(np.zeros((2, 63), np.int64), "shape"),
                                        (np.full((2, 64), 40), "0..31"),
                                        (np.zeros((2, 64), np.float32), "integers")])
def test_reference_rejects_bad_inputs(digits_run, bad, needle):
    with pytest.raises(HwgenError, match=needle):
        reference.infer(digits_run["model"], bad)


def test_residual_activations_export_exactly():
    """2-bit residual activations: thresholds count levels, the next layer
    reads odd integers; golden activations agree with the float model's
    (followed along the golden path) except within rounding of a level."""
    from hwgen.training.exporter import export_model
    from hwgen.training.train import train
    from hwgen.training.data import load_dataset
    tm, info = train(log=None, epochs=8, hidden=[24, 16], act_bits=2, threads=1)
    model = artifact.loads(artifact.dumps(export_model(tm, info, info["input"]["bits"])))
    assert [l.output_bits for l in model.layers[:-1]] == [2, 2]
    assert model.layers[0].threshold.shape == (24, 3) and model.layers[1].input_bits == 2
    x = load_dataset("digits").x_test
    golden = reference.infer(model, x)
    a = torch.as_tensor(x, dtype=torch.float64)
    tm.double().eval()
    with torch.no_grad():
        for k, block in enumerate(tm.hidden):
            z = block["bn"](block["linear"](a))
            want = (tm.act(z) * 2 + 3) / 2                   # level codes 0..3
            assert (want.numpy() != golden.activations[k]).mean() < 0.01
            a = torch.as_tensor(golden.activations[k].astype(np.int64) * 2 - 3, dtype=torch.float64) / 2
    acc = (golden.pred == load_dataset("digits").y_test).mean()
    assert abs(acc - info["float_accuracy"]) <= 0.015


def test_rtl_refuses_multibit_activations(tmp_path):
    from hwgen import rtl
    from hwgen.training.exporter import export_model
    from hwgen.training.train import train
    tm, info = train(log=None, epochs=1, hidden=[8], act_bits=2, threads=1)
    with pytest.raises(HwgenError, match="2-bit activations"):
        rtl.generate(export_model(tm, info, info["input"]["bits"]), tmp_path)
