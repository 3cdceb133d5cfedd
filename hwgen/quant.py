"""Heterogeneous Bitwidth Binarization (HBB): bit mixes, Middle-Out selection,
residual binarization and the straight-through quantizer pairs.

Conventions (also in docs/format.md):

* ``sign(0) = +1`` everywhere, so a bit-plane entry is always exactly +-1.
* A *bit mix* maps a bit count ``b`` (0..MAX_BITS; 0 = pruned) to the fraction
  of a tensor's weights that get exactly ``b`` bits.
"""
import math

import torch

from .errors import HwgenError

__all__ = ["MAX_BITS", "parse_bits", "mix_counts", "select_bits", "residual_binarize",
           "hbb_quantize", "QUANTIZERS", "DEFAULT_MIX_1_4"]

MAX_BITS = 3

#: What ``--bits 1.4`` means: 60 % of weights with 1 bit, 40 % with 2 bits.
DEFAULT_MIX_1_4 = {1: 0.6, 2: 0.4}


def parse_bits(spec):
    """Parse a bit-mix spec into ``{bits: fraction}``.

    ``"1:0.6,2:0.4"`` is an explicit mix; ``"2"`` is homogeneous 2 bits; a
    fractional average ``"1.4"`` mixes the two neighbouring integer widths
    (1.4 -> 60 % 1-bit + 40 % 2-bit, the paper's mix).
    """
    text = str(spec).strip()
    try:
        if ":" in text:
            mix = {}
            for part in text.split(","):
                b, p = part.split(":")
                b = int(b)
                if b in mix:
                    raise HwgenError(f"bit mix {text!r} names {b} bits twice")
                mix[b] = float(p)
        else:
            avg = float(text)
            lo = math.floor(avg)
            frac = avg - lo
            mix = {lo: 1.0} if frac < 1e-9 else {lo: 1.0 - frac, lo + 1: frac}
    except ValueError:
        raise HwgenError(f"cannot parse bit mix {text!r}: use e.g. '1:0.6,2:0.4', '1.4' or '2'") from None
    for b, p in mix.items():
        if not 0 <= b <= MAX_BITS:
            raise HwgenError(f"bitwidth {b} in {text!r} is out of range 0..{MAX_BITS}")
        if not 0.0 <= p <= 1.0:
            raise HwgenError(f"fraction {p} for {b} bits in {text!r} is not within 0..1")
    if abs(sum(mix.values()) - 1.0) > 1e-6:
        raise HwgenError(f"fractions of bit mix {text!r} sum to {sum(mix.values()):g}, not 1")
    if not any(b > 0 and p > 0 for b, p in mix.items()):
        raise HwgenError(f"bit mix {text!r} prunes every weight")
    return {b: p for b, p in sorted(mix.items()) if p > 0}


def mix_counts(mix, n):
    """Exact integer counts per bit width for ``n`` weights (largest remainder)."""
    raw = {b: mix.get(b, 0.0) * n for b in range(MAX_BITS + 1)}
    counts = {b: int(math.floor(v)) for b, v in raw.items()}
    rest = n - sum(counts.values())
    for b in sorted(raw, key=lambda b: (-(raw[b] - counts[b]), b))[:rest]:
        counts[b] += 1
    return counts


def select_bits(w, mix):
    """Middle-Out bit selection: an int tensor of per-weight bit counts.

    Weights given 0 bits (pruned) are the smallest-magnitude ones. Then at each
    step ``b`` the scale ``mu_b`` is the mean ``|R_b|`` over the entries still
    active, and the ``count[b]`` active entries whose ``|R_b|`` is closest to
    ``mu_b`` stop at ``b`` bits; the rest get another bit. Ties go to the
    lower flat index, so the result is deterministic.
    """
    flat = w.detach().reshape(-1)
    n = flat.numel()
    counts = mix_counts(mix, n)
    nbits = torch.zeros(n, dtype=torch.int8, device=flat.device)
    active = torch.arange(n, device=flat.device)
    if counts[0]:
        order = torch.argsort(flat.abs(), stable=True)
        active = torch.sort(order[counts[0]:]).values
    r = flat.clone()
    top = max(b for b in range(MAX_BITS + 1) if counts[b])
    for b in range(1, top + 1):
        ra = r[active]
        mu = ra.abs().mean()
        if b == top:
            nbits[active] = b
            break
        dist = (ra.abs() - mu).abs()
        order = torch.argsort(dist, stable=True)
        nbits[active[order[:counts[b]]]] = b
        active = torch.sort(active[order[counts[b]:]]).values
        r[active] = r[active] - mu * torch.where(r[active] >= 0, 1.0, -1.0)
    return nbits.reshape(w.shape)


def residual_binarize(w, nbits, channel_dim=None):
    """Residual binarization of ``w`` with per-weight bit counts ``nbits``.

    Returns ``(w_hat, mus, planes)``: ``planes[b-1]`` is the +-1 plane of bit b
    (0 where the weight has fewer bits); ``mus[b-1]`` its scale: a scalar per
    tensor, or one per slice along ``channel_dim``.
    """
    r = w.detach().clone()
    w_hat = torch.zeros_like(r)
    mus, planes = [], []
    reduce_dims = None if channel_dim is None else [d for d in range(w.dim()) if d != channel_dim]
    top = int(nbits.max()) if nbits.numel() else 0
    for b in range(1, top + 1):
        m = (nbits >= b).to(r.dtype)
        s = torch.where(r >= 0, 1.0, -1.0).to(r.dtype) * m
        if reduce_dims is None:
            mu = (r.abs() * m).sum() / m.sum().clamp(min=1)
        else:
            mu = (r.abs() * m).sum(dim=reduce_dims, keepdim=True) / m.sum(dim=reduce_dims, keepdim=True).clamp(min=1)
        w_hat = w_hat + mu * s
        r = r - mu * s
        mus.append(mu)
        planes.append(s)
    return w_hat, mus, planes


class _SignSTE(torch.autograd.Function):
    """Forward: the HBB reconstruction; backward: a straight-through gradient,
    optionally clipped to ``|w| <= 1`` (BNN)."""

    @staticmethod
    def forward(ctx, w, w_hat, clip):
        ctx.save_for_backward(w)
        ctx.clip = clip
        return w_hat

    @staticmethod
    def backward(ctx, grad):
        (w,) = ctx.saved_tensors
        if ctx.clip:
            grad = grad * (w.abs() <= 1).to(grad.dtype)
        return grad, None, None


#: Forward/backward pairs available in this release. Both use sign() planes in
#: the forward pass; ``bc`` passes the gradient straight through, ``bnn`` zeroes
#: it where ``|w| > 1``.
QUANTIZERS = {"bc": False, "bnn": True}


def hbb_quantize(w, nbits, quantizer="bnn", channel_dim=None):
    """Differentiable HBB weights: forward value = residual binarization."""
    w_hat, _, _ = residual_binarize(w, nbits, channel_dim)
    return _SignSTE.apply(w, w_hat, QUANTIZERS[quantizer])
