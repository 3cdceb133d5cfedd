import numpy as np
import pytest
import torch

from hwgen.errors import HwgenError
from hwgen.quant import hbb_quantize, mix_counts, parse_bits, residual_binarize, select_bits


def reference_residual(w, nbits):
    """The HBB formula, written out literally, one entry at a time for clarity."""
    w = w.double()
    r = w.clone()
    w_hat = torch.zeros_like(w)
    for b in range(1, int(nbits.max()) + 1):
        active = [j for j in range(w.numel()) if nbits[j] >= b]
        mu = sum(abs(float(r[j])) for j in active) / len(active)
        for j in active:
            s = 1.0 if r[j] >= 0 else -1.0
            w_hat[j] += mu * s
            r[j] -= mu * s
    return w_hat


@pytest.mark.parametrize("seed", range(5))
def test_residual_binarization_matches_formula(seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(200, generator=g, dtype=torch.float64)
    nbits = torch.randint(1, 4, (200,), generator=g)
    w_hat, mus, planes = residual_binarize(w, nbits)
    torch.testing.assert_close(w_hat, reference_residual(w, nbits))
    for b, plane in enumerate(planes, start=1):
        assert set(plane[nbits >= b].tolist()) <= {-1.0, 1.0}
        assert (plane[nbits < b] == 0).all()


def test_sign_of_zero_is_plus_one():
    w = torch.tensor([0.0, -0.0, 1.0, -1.0])
    _, _, planes = residual_binarize(w, torch.ones(4, dtype=torch.int8))
    assert planes[0].tolist() == [1.0, 1.0, 1.0, -1.0]


@pytest.mark.parametrize("mix", [{1: 0.6, 2: 0.4}, {1: 0.7, 2: 0.2, 3: 0.1}, {2: 1.0}, {0: 0.1, 1: 0.5, 3: 0.4}])
@pytest.mark.parametrize("n", [1, 7, 100, 1001])
def test_middle_out_gives_exact_fractions(mix, n):
    w = torch.randn(n, generator=torch.Generator().manual_seed(n))
    nbits = select_bits(w, mix)
    counts = mix_counts(mix, n)
    assert sum(counts.values()) == n
    for b in range(4):
        assert int((nbits == b).sum()) == counts[b]
        assert abs(counts[b] - mix.get(b, 0) * n) <= 1


def test_middle_out_stops_entries_closest_to_the_mean():
    w = torch.randn(1000, generator=torch.Generator().manual_seed(3))
    nbits = select_bits(w, {1: 0.6, 2: 0.4})
    mu = w.abs().mean()
    dist = (w.abs() - mu).abs()
    # every 1-bit entry is at least as close to mu_1 as every 2-bit entry
    assert dist[nbits == 1].max() <= dist[nbits == 2].min()


def test_middle_out_second_step_uses_residual_mean():
    w = torch.randn(1000, generator=torch.Generator().manual_seed(4))
    nbits = select_bits(w, {1: 0.5, 2: 0.3, 3: 0.2})
    mu1 = w.abs().mean()
    r2 = w - mu1 * torch.where(w >= 0, 1.0, -1.0)
    active = nbits >= 2
    mu2 = r2[active].abs().mean()
    dist = (r2.abs() - mu2).abs()
    assert dist[nbits == 2].max() <= dist[nbits == 3].min()


def test_middle_out_reconstruction_matches_brief():
    """Data-free sanity figures from the brief (10^6 N(0,1) samples)."""
    w = torch.randn(1_000_000, generator=torch.Generator().manual_seed(0))
    expected = {"1": 0.363, "2": 0.130, "1:0.6,2:0.4": 0.097, "1:0.7,2:0.2,3:0.1": 0.102}
    for spec, mse in expected.items():
        mix = parse_bits(spec)
        w_hat, _, _ = residual_binarize(w, select_bits(w, mix))
        assert float(((w - w_hat) ** 2).mean()) == pytest.approx(mse, abs=0.002), spec


@pytest.mark.parametrize("quantizer,clip", [("bnn", True), ("bc", False)])
def test_straight_through_gradient(quantizer, clip):
    w = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.3, 1.0, 1.5], requires_grad=True)
    nbits = torch.tensor([1, 2, 1, 2, 1, 2, 1])
    upstream = torch.arange(1.0, 8.0)
    out = hbb_quantize(w, nbits, quantizer)
    w_hat, _, _ = residual_binarize(w.detach(), nbits)
    torch.testing.assert_close(out.detach(), w_hat)
    out.backward(upstream)
    expected = upstream * ((w.detach().abs() <= 1).float() if clip else 1.0)
    torch.testing.assert_close(w.grad, expected)


def test_sign_activation_gradient_is_clipped():
    from hwgen.nn import SignActivation
    x = torch.tensor([-1.5, -1.0, -0.2, 0.0, 0.7, 2.0], requires_grad=True)
    y = SignActivation()(x)
    assert y.tolist() == [-1, -1, -1, 1, 1, 1]
    y.sum().backward()
    assert x.grad.tolist() == [0, 1, 1, 1, 1, 0]


@pytest.mark.parametrize("spec,mix", [("1.4", {1: 0.6, 2: 0.4}), ("2", {2: 1.0}),
                                      ("1:0.7,2:0.2,3:0.1", {1: 0.7, 2: 0.2, 3: 0.1}), ("2.5", {2: 0.5, 3: 0.5})])
def test_parse_bits(spec, mix):
    got = parse_bits(spec)
    assert got.keys() == mix.keys() and all(got[b] == pytest.approx(p) for b, p in mix.items())


@pytest.mark.parametrize("spec", ["4", "1:0.5,2:0.4", "1:0.5,5:0.5", "x", "0", "1:-0.5,2:1.5", "3.5"])
def test_parse_bits_rejects(spec):
    with pytest.raises(HwgenError):
        parse_bits(spec)
