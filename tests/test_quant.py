import numpy as np
import pytest
import torch

from hwgen.errors import HwgenError
from hwgen.training.quant import hbb_quantize, mix_counts, parse_bits, random_bits, residual_binarize, select_bits


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
    from hwgen.training.nn import SignActivation
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


# --------------------------------------------------------------------------
# ProxConnect++ presets: forward values and gradients against closed forms
# --------------------------------------------------------------------------

def _closed_form_plane(name, u, t):
    """F of each preset at progress t, written out from docs/training.md."""
    sgn = torch.where(u >= 0, 1.0, -1.0).double()
    if name in ("bc", "bnn", "bnn+") or t >= 0.9:
        return sgn
    if name == "proxconnect":
        rho = t / 0.9
        a = u.abs()
        return sgn * torch.where(a < 1, torch.clamp(a + rho, max=1.0), torch.clamp(a - rho, min=1.0))
    beta = 2.0 ** (t / 0.9)
    s = torch.sigmoid(beta * u)
    return 2 * s * (1 + beta * u * (1 - s)) - 1


def _closed_form_derivative(name, u, t):
    """B' of the normalised presets: SignSwish' or the prox map's derivative."""
    if name == "proxconnect":
        rho = min(t / 0.9, 1.0)
        a = u.abs()
        return torch.where(a < 1, a + rho < 1, a - rho > 1).double()
    beta = 1.0 if name == "bnn+" else 2.0 ** min(t / 0.9, 1.0)
    bu = beta * u
    return beta * (2 - bu * torch.tanh(bu / 2)) / (1 + torch.cosh(bu))


@pytest.mark.parametrize("name", ["bc", "bnn", "bnn+", "proxconnect", "bnn++"])
@pytest.mark.parametrize("t", [0.0, 0.3, 0.7, 0.95])
def test_quantizer_preset_forward_and_gradient(name, t):
    g = torch.Generator().manual_seed(7)
    w = (torch.randn(6, 40, generator=g, dtype=torch.float64) * 0.9).requires_grad_()
    nbits = torch.randint(0, 4, (6, 40), generator=g)
    upstream = torch.randn(6, 40, generator=g, dtype=torch.float64)
    out = hbb_quantize(w, nbits, name, t=t)
    # the HBB recursion with the preset's plane function, written out; the
    # Jacobian J = 1 - prod_{b <= n} (1 - B'(u_b)) alongside (B'(u_1) if pruned)
    r, expected = w.detach().clone(), torch.zeros_like(w)
    keep, first = torch.ones_like(w), None
    for b in range(1, 4):
        m = nbits >= b
        mu = r[m].abs().mean()
        u = r / max(mu, 1e-12)
        plane = torch.where(m, _closed_form_plane(name, u, t), 0.0)
        if name in ("bnn+", "proxconnect", "bnn++"):
            d = _closed_form_derivative(name, u, t)
            first = d if first is None else first
            keep = keep * torch.where(m, 1 - d, 1.0)
        expected += mu * plane
        r -= mu * plane
    torch.testing.assert_close(out.detach(), expected)
    if name == "bc":
        jac = torch.ones_like(w)
    elif name == "bnn":
        jac = (w.detach().abs() <= 1).double()
    else:
        jac = torch.where(nbits == 0, first, 1 - keep)
    out.backward(upstream)
    torch.testing.assert_close(w.grad, upstream * jac)


def test_one_bit_jacobian_is_the_backward_quantizer_derivative():
    """With a single bit the pullback is exactly B'(w / mu) (the ProxConnect++ rule)."""
    from hwgen.training.quant import sign_swish_grad
    w = torch.randn(3, 50, generator=torch.Generator().manual_seed(4), dtype=torch.float64).requires_grad_()
    hbb_quantize(w, torch.ones(3, 50, dtype=torch.int8), "bnn+").sum().backward()
    torch.testing.assert_close(w.grad, sign_swish_grad(w.detach() / w.detach().abs().mean(), 1.0))


def test_bnn_clip_zeroes_gradient_beyond_one():
    w = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.3, 1.0, 1.5], requires_grad=True)
    hbb_quantize(w, torch.ones(7, dtype=torch.int8), "bnn").backward(torch.ones(7))
    assert w.grad.tolist() == [0, 1, 1, 1, 1, 1, 0]


def test_closed_form_derivatives_match_autograd():
    from hwgen.training.quant import prox_sign, prox_sign_grad, sign_swish, sign_swish_grad
    x = torch.linspace(-3, 3, 601, dtype=torch.float64).requires_grad_()
    for beta in (0.5, 1.0, 5.0, 16.0):
        (g,) = torch.autograd.grad(sign_swish(x, beta).sum(), x)
        torch.testing.assert_close(g, sign_swish_grad(x.detach(), beta))
    x = x.detach()[(x.detach().abs() - 1).abs() > 1e-3]  # prox kinks at |x| = 1
    for rho in (0.0, 0.25, 0.6):
        xs = x[((x.abs() + rho - 1).abs() > 1e-3) & ((x.abs() - rho - 1).abs() > 1e-3)].requires_grad_()
        (g,) = torch.autograd.grad(prox_sign(xs, rho).sum(), xs)
        torch.testing.assert_close(g, prox_sign_grad(xs.detach(), rho))


@pytest.mark.parametrize("name", ["proxconnect", "bnn++"])
def test_soft_presets_end_exactly_at_sign(name):
    """From 90 % of training on, and in eval mode, planes are exact sign()."""
    from hwgen.training.quant import QUANTIZERS
    q = QUANTIZERS[name]
    u = torch.linspace(-1.9, 1.9, 77, dtype=torch.float64)
    for t in (0.9, 1.0):
        assert q.plane(u, t).abs().eq(1).all()
    assert not q.plane(u, 0.5).abs().eq(1).all()
    w = torch.randn(5, 9, generator=torch.Generator().manual_seed(1))
    nbits = torch.randint(1, 4, (5, 9), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(hbb_quantize(w, nbits, name, t=1.0), residual_binarize(w, nbits)[0])


# --------------------------------------------------------------------------
# Bit selection: fast path == stable-sort definition; other rules; schedules
# --------------------------------------------------------------------------

def _select_by_sorting(w, mix, rule="middle-out"):
    """The definition, with full stable sorts over the active entries."""
    flat = w.reshape(-1).double()
    n = flat.numel()
    counts = mix_counts(mix, n)
    nbits = torch.zeros(n, dtype=torch.int8)
    active = torch.sort(torch.argsort(flat.abs(), stable=True)[counts[0]:]).values
    r = flat.clone()
    top = max(b for b in counts if counts[b])
    for b in range(1, top + 1):
        ra = r[active]
        mu = ra.abs().mean()
        if b == top:
            nbits[active] = b
            break
        key = (ra.abs() - mu).abs() if rule == "middle-out" else ra.abs()
        order = torch.argsort(key, stable=True)
        nbits[active[order[:counts[b]]]] = b
        active = torch.sort(active[order[counts[b]:]]).values
        r[active] -= mu * torch.where(r[active] >= 0, 1.0, -1.0).double()
    return nbits.reshape(w.shape)


@pytest.mark.parametrize("rule", ["middle-out", "magnitude"])
@pytest.mark.parametrize("seed", range(6))
def test_fast_selection_equals_sorting_definition(rule, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(13, 37, generator=g, dtype=torch.float64)
    if seed % 2:  # many exact ties: ties must go to the lower index
        w = torch.round(w * 2) / 2
    for mix in ({1: 0.6, 2: 0.4}, {0: 0.1, 1: 0.6, 2: 0.2, 3: 0.1}, {1: 0.2, 3: 0.8}):
        assert torch.equal(select_bits(w, mix, rule), _select_by_sorting(w, mix, rule))


def test_magnitude_rule_gives_more_bits_to_larger_weights():
    w = torch.randn(500, generator=torch.Generator().manual_seed(5))
    nbits = select_bits(w, {1: 0.6, 2: 0.4}, "magnitude")
    assert w[nbits == 1].abs().max() <= w[nbits == 2].abs().min()


def test_random_rule_has_exact_counts_and_ignores_weights():
    from hwgen.training.nn import HBBLinear
    torch.manual_seed(3)
    layer = HBBLinear(50, 20, mix={1: 0.6, 2: 0.4}, selection="random")
    before = layer.nbits.clone()
    assert int((before == 1).sum()) == 600 and int((before == 2).sum()) == 400
    with torch.no_grad():
        layer.weight.mul_(-3.0)
    layer.train()
    layer(torch.randn(4, 50))
    assert torch.equal(layer.nbits, before)
    torch.manual_seed(3)
    assert torch.equal(HBBLinear(50, 20, mix={1: 0.6, 2: 0.4}, selection="random").nbits, before)


def test_per_channel_scales_are_row_means():
    g = torch.Generator().manual_seed(9)
    w = torch.randn(4, 30, generator=g) * torch.tensor([[0.1], [1.0], [3.0], [0.5]])
    nbits = torch.randint(1, 3, (4, 30), generator=g)
    w_hat, mus, planes = residual_binarize(w, nbits, scale="channel")
    assert mus[0].shape == (4, 1)
    torch.testing.assert_close(mus[0].reshape(-1), w.abs().mean(dim=1))
    for o in range(4):
        torch.testing.assert_close(w_hat[o], residual_binarize(w[o], nbits[o])[0])


def test_recompute_period_and_freeze():
    from hwgen.training.nn import HBBLinear, set_progress
    torch.manual_seed(0)
    layer = HBBLinear(30, 10, mix={1: 0.6, 2: 0.4}, recompute_every=3, freeze_after=0.5)
    layer.train()
    changed = []
    for step in range(9):
        set_progress(layer, step / 9)
        before = layer.nbits.clone()
        with torch.no_grad():
            layer.weight.copy_(torch.randn(10, 30))
        layer(torch.randn(2, 30))
        changed.append(not torch.equal(before, layer.nbits))
    # recomputed at steps 0 and 3 (progress < 0.5), frozen from step 6 (progress 0.67) on
    assert changed == [True, False, False, True, False, False, False, False, False]


@pytest.mark.parametrize("scale", ["tensor", "channel"])
@pytest.mark.parametrize("rule", ["middle-out", "magnitude"])
def test_exact_fractions_for_conv_kernels_and_channel_scales(scale, rule):
    w = torch.randn(16, 8, 3, 3, generator=torch.Generator().manual_seed(11))
    for mix in ({1: 0.6, 2: 0.4}, {0: 0.05, 1: 0.7, 2: 0.2, 3: 0.05}):
        nbits = select_bits(w, mix, rule, scale)
        assert nbits.shape == w.shape
        counts = mix_counts(mix, w.numel())
        assert [int((nbits == b).sum()) for b in range(4)] == [counts[b] for b in range(4)]


def test_warm_started_selection_stays_exact_over_training_steps():
    """The bracket search (hints kept between calls) returns exactly the
    sorting definition at every step, whether the bracket hits or misses,
    whether its keys come from the kept candidates or are collected anew,
    and with ties straddling the k-th value."""
    from hwgen.training import quant
    g = torch.Generator().manual_seed(12)
    w = torch.randn(128, 160, generator=g, dtype=torch.float64)
    assert w.numel() >= quant._BRACKET_MIN          # small tensors skip the bracket
    hints = {}
    mix = {1: 0.6, 2: 0.3, 3: 0.1}
    paths = set()
    for step in range(30):
        scale = 1e-4 if step % 6 else 0.5          # small steps, and now and then a big jump
        w = w + scale * torch.randn(128, 160, generator=g, dtype=torch.float64)
        if step == 20:                             # many exact ties around the k-th value
            w = torch.round(w * 8) / 8
        width, cand = hints.get(1, {}).get("width"), hints.get(1, {}).get("cand")
        got = quant.hbb(w, mix=mix, hints=hints).nbits
        assert torch.equal(got, _select_by_sorting(w, mix)), step
        if width is not None:
            paths.add("hit" if hints[1]["width"] <= width else "miss")
        if cand is not None:
            paths.add("candidates kept" if hints[1]["cand"] is cand else "candidates collected")
    assert paths == {"hit", "miss", "candidates kept", "candidates collected"}
    assert hints[1]["thr"] > 0 and 0.01 <= hints[1]["width"] <= 1.0


def test_small_tensors_select_exactly_without_the_bracket():
    from hwgen.training import quant
    w = torch.randn(30, 40, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    hints = {}
    for _ in range(3):
        assert torch.equal(quant.hbb(w, mix={1: 0.6, 2: 0.4}, hints=hints).nbits,
                           _select_by_sorting(w, {1: 0.6, 2: 0.4}))
    assert hints.get(1, {}) == {}


@pytest.mark.parametrize("rule", ["middle-out", "magnitude"])
@pytest.mark.parametrize("group", [(1, 8), (2, 4), (4, 16)])
def test_group_selection_gives_one_bit_count_per_block_and_the_exact_mix(rule, group):
    torch.manual_seed(3)
    w = torch.randn(8, 32)
    mix = {0: 0.125, 1: 0.5, 2: 0.25, 3: 0.125}
    nbits = select_bits(w, mix, rule, group=group)
    gr, gc = group
    blocks = nbits.reshape(8 // gr, gr, 32 // gc, gc)
    assert (blocks.amax(dim=(1, 3)) == blocks.amin(dim=(1, 3))).all()
    n_blocks = 256 // (gr * gc)
    counts = mix_counts(mix, n_blocks)
    per_block = blocks.amax(dim=(1, 3)).reshape(-1)
    assert {b: int((per_block == b).sum()) for b in range(4)} == counts
    # pruned blocks are the ones with the smallest mean |w|
    mean_abs = w.abs().reshape(8 // gr, gr, 32 // gc, gc).mean(dim=(1, 3)).reshape(-1)
    assert mean_abs[per_block == 0].max() <= mean_abs[per_block > 0].min()


def test_group_middle_out_stops_the_blocks_closest_to_the_scale():
    """Middle-Out per block: after bit 1 the blocks whose mean |R_2| is the
    smallest stop at one bit."""
    torch.manual_seed(4)
    w = torch.randn(4, 64)
    nbits = select_bits(w, {1: 0.5, 2: 0.5}, group=(1, 8))
    mu = w.abs().mean()
    key = (w.abs() - mu).abs().reshape(4, 8, 8).mean(dim=2).reshape(-1)
    stopped = nbits.reshape(4, 8, 8)[:, :, 0].reshape(-1) == 1
    assert key[stopped].max() <= key[~stopped].min()


def test_random_bits_per_group():
    nbits = random_bits((8, 2, 2, 2), {1: 0.5, 2: 0.5}, torch.Generator().manual_seed(0), group=(2, 4))
    blocks = nbits.reshape(4, 2, 2, 4)
    assert (blocks.amax(dim=(1, 3)) == blocks.amin(dim=(1, 3))).all()
    assert int((nbits == 2).sum()) == 32


@pytest.mark.parametrize("rule", ["middle-out", "magnitude"])
@pytest.mark.parametrize("shape", [(12, 40), (6, 3, 3, 3)])
@pytest.mark.parametrize("name", ["neuron", "input"])
def test_named_groups_give_each_neuron_or_input_one_bit_count(rule, shape, name):
    """``group="neuron"``: one bit count per row of the ``[out, fan_in]``
    view (a conv's output channel); ``"input"``: one per column (shared by
    the layer's neurons). The mix is counted in rows or columns, and
    Middle-Out stops those whose mean |R_2| is closest to mu_2."""
    torch.manual_seed(5)
    w = torch.randn(*shape)
    mix = {1: 0.5, 2: 1 / 3, 3: 1 / 6}

    def blocks(t):   # [blocks, members]
        t = t.reshape(shape[0], -1)
        return t if name == "neuron" else t.T
    nbits = blocks(select_bits(w, mix, rule, group=name))
    assert (nbits == nbits[:, :1]).all()
    per_block = nbits[:, 0]
    n = per_block.numel()
    assert {b: int((per_block == b).sum()) for b in (1, 2, 3)} == {
        b: c for b, c in mix_counts(mix, n).items() if b}
    r = w.abs()
    key = blocks((r - r.mean()).abs() if rule == "middle-out" else r).mean(dim=1)
    assert key[per_block == 1].max() <= key[per_block > 1].min()
    rnd = blocks(random_bits(shape, mix, torch.Generator().manual_seed(0), group=name))
    assert (rnd == rnd[:, :1]).all() and int((rnd[:, 0] == 1).sum()) == mix_counts(mix, n)[1]


def test_a_group_that_does_not_tile_the_weights_is_refused():
    with pytest.raises(ValueError, match="mask group 3x8 does not tile a 16 x 64 weight matrix"):
        select_bits(torch.randn(16, 64), {1: 1.0}, group=(3, 8))
    with pytest.raises(ValueError, match="one of neuron, input, not 'row'"):
        select_bits(torch.randn(16, 64), {1: 1.0}, group="row")
