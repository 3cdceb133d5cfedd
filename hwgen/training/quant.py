"""Heterogeneous Bitwidth Binarization (HBB): bit mixes, bit selection,
residual binarization and the ProxConnect++ forward/backward quantizer pairs.

Conventions (also in docs/format.md and docs/training.md):

* ``sign(0) = +1`` everywhere, so a bit-plane entry is always exactly +-1.
* A *bit mix* maps a bit count ``b`` (0..MAX_BITS; 0 = pruned) to the fraction
  of a tensor's weights that get exactly ``b`` bits.
* Weights are handled as a 2-D view ``[out, fan_in]`` (a conv kernel
  ``[out, c, kh, kw]`` is flattened); scales are per tensor or per output
  channel (row).
"""
import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from ..core.artifact import MAX_BITS
from ..errors import HwgenError
from .options import QUANTIZER_PRESETS, SCALES, SELECTIONS

__all__ = ["MAX_BITS", "parse_bits", "pullback", "mix_counts", "select_bits", "random_bits", "residual_binarize",
           "hbb", "hbb_quantize", "Quantizer", "QUANTIZERS", "get_quantizer", "SELECTIONS", "SCALES",
           "NAMED_GROUPS", "sign_swish", "sign_swish_grad", "prox_sign", "prox_sign_grad"]


#: Mask groups by name, as ``(rows, cols)`` of a layer's ``[out, fan_in]``
#: view: one bit count per output neuron / channel, or per input (the same
#: for all of a layer's neurons).
NAMED_GROUPS = {"neuron": lambda out, fan_in: (1, fan_in), "input": lambda out, fan_in: (out, 1)}


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
    return dict(_mix_counts(tuple(sorted(mix.items())), n))


@functools.lru_cache(maxsize=1024)
def _mix_counts(mix_items, n):  # every training step asks again: cached
    mix = dict(mix_items)
    raw = {b: mix.get(b, 0.0) * n for b in range(MAX_BITS + 1)}
    counts = {b: int(math.floor(v)) for b, v in raw.items()}
    rest = n - sum(counts.values())
    for b in sorted(raw, key=lambda b: (-(raw[b] - counts[b]), b))[:rest]:
        counts[b] += 1
    return tuple(counts.items())


# --------------------------------------------------------------------------
# Forward/backward functions of the quantizer presets (closed forms)
# --------------------------------------------------------------------------

_ONE = torch.ones(())


def _sign(x):
    """+-1 with sign(0) = sign(-0.0) = +1 (adding +0.0 turns -0.0 into +0.0)."""
    return torch.copysign(_ONE.to(x.dtype), x + 0.0)


def sign_swish(x, beta):
    """SignSwish_beta(x) = 2 sigma(beta x) [1 + beta x (1 - sigma(beta x))] - 1 (BNN+)."""
    s = torch.sigmoid(beta * x)
    return 2 * s * (1 + beta * x * (1 - s)) - 1


def sign_swish_grad(x, beta):
    """d/dx SignSwish_beta(x) = beta [2 - beta x tanh(beta x / 2)] / (1 + cosh(beta x))."""
    bx = beta * x
    return beta * (2 - bx * torch.tanh(bx / 2)) / (1 + torch.cosh(bx))


def prox_sign(x, rho):
    """Proximal map of ``rho * dist(x, {-1, +1})``: moves ``x`` by ``rho``
    towards the nearest of +-1 without overshooting. ``rho = 0`` is the
    identity; ``rho >= 1`` is exactly ``sign`` (with ``sign(0) = +1``) on
    ``|x| <= 2``."""
    s = _sign(x)
    a = x.abs()
    moved = torch.where(a < 1, torch.clamp(a + rho, max=1.0), torch.clamp(a - rho, min=1.0))
    return s * moved


def prox_sign_grad(x, rho):
    """Derivative of :func:`prox_sign`: 1 where the point moved freely, 0 where
    it snapped onto +-1."""
    a = x.abs()
    free = torch.where(a < 1, a + rho < 1, a - rho > 1)
    return free.to(x.dtype)


@dataclass(frozen=True)
class Quantizer:
    """A ProxConnect++ pair (F, B) applied to every HBB bit-plane.

    ``forward`` is F, evaluated per plane on the normalised residual
    ``u_b = R_b / mu_b``; ``backward`` is B, whose derivative replaces F' in
    the Jacobian of the HBB recursion (see :func:`hbb`), or for
    ``raw_backward`` presets is evaluated on the raw latent weight, as in
    the original BNN/HBB code. :meth:`param` maps training progress ``t``
    in [0, 1] to the annealed parameter; from ``hard_after`` on, the forward
    pass is exactly sign (what the hardware computes).
    """
    name: str
    forward: str            # "sign" | "signswish" | "prox"
    backward: str           # "identity" | "clip" | "signswish" | "prox"
    raw_backward: bool
    start: float = 0.0      # annealed parameter at t = 0 (beta or rho)
    end: float = 0.0        # ... at t = hard_after
    hard_after: float = 1.0
    summary: str = ""

    def param(self, t):
        """The annealed parameter (beta for SignSwish, rho for prox) at progress t."""
        if self.start == self.end:
            return self.start
        t = min(max(t / self.hard_after, 0.0), 1.0)
        if self.forward == "prox" or self.backward == "prox":
            return self.start + (self.end - self.start) * t           # linear
        return self.start * (self.end / self.start) ** t               # geometric

    def hard(self, t):
        return self.forward == "sign" or t >= self.hard_after

    def plane(self, u, t):
        """Forward plane values on the normalised residual ``u``."""
        if self.hard(t):
            return _sign(u)
        if self.forward == "signswish":
            return sign_swish(u, self.param(t))
        return prox_sign(u, self.param(t))

    def jacobian(self, u, t):
        """Diagonal Jacobian of B at ``u`` (``None`` = identity)."""
        if self.backward == "identity":
            return None
        if self.backward == "clip":
            return torch.le(u.abs(), 1, out=torch.empty_like(u))  # 1[|u| <= 1], straight into floats
        if self.backward == "signswish":
            return sign_swish_grad(u, self.param(t))
        return prox_sign_grad(u, self.param(t))


#: Named presets (:data:`hwgen.training.options.QUANTIZER_PRESETS`).
QUANTIZERS = {name: Quantizer(name, **fields) for name, fields in QUANTIZER_PRESETS.items()}


def get_quantizer(name):
    try:
        return QUANTIZERS[name]
    except KeyError:
        raise HwgenError(f"unknown quantizer {name!r}; available: {', '.join(QUANTIZERS)}") from None


# --------------------------------------------------------------------------
# Selection + residual binarization, fused
# --------------------------------------------------------------------------

def _count(mask):
    """Number of ones in a 0/1 float mask (exact: a float32 sum of 0/1 is
    exact below 2**24 entries)."""
    total = mask.sum() if mask.numel() < 2 ** 24 else mask.sum(dtype=torch.float64)
    return int(total)


def _less(key, value):
    """0/1 float mask of ``key < value`` (a comparison into a float tensor is
    several times faster than one into bool on CPU)."""
    return torch.lt(key, value, out=torch.empty_like(key))


#: Below this many keys the warm-started bracket does not pay (bench/train_step.py).
_BRACKET_MIN = 1 << 14


def _rest_after_smallest(key, k, hint=None):
    """0/1 float mask of the entries of 1-D ``key`` that are *not* among its
    ``k`` smallest; ties go to the lower index (the ``k`` a stable sort would
    put first stop), without sorting.

    ``hint`` (a dict kept by the caller between calls) warm-starts the search:
    the k-th value moves little from one training step to the next, so it is
    first looked for inside a narrow bracket ``[lo, hi)`` around the last one
    moved by the last drift (two counting passes tell whether it is there),
    and the keys inside the bracket are gathered from a list of candidates
    kept between calls (see :func:`_bracket`). The result is exact either
    way. A missed bracket costs a full selection, a wide one only a slightly
    bigger partial one, so the width shrinks slowly and has a floor.
    """
    n = key.numel()
    if k <= 0:
        return torch.ones_like(key)
    if k >= n:
        return torch.zeros_like(key)
    if n < _BRACKET_MIN:  # one selection over a small tensor costs less than the bracket's extra passes
        hint = None
    thr = None
    if hint is not None and "thr" in hint:
        centre, half = hint["thr"] + hint["drift"], hint["thr"] * hint["width"]
        lo, hi = centre - half, centre + half
        c_lo = _count(_less(key, lo))
        c_hi = _count(_less(key, hi)) if c_lo < k else c_lo
        if c_lo < k <= c_hi:      # the k-th smallest is in [lo, hi)
            band = _bracket(key, lo, hi, c_hi - c_lo, hint)
            thr = torch.kthvalue(band, k - c_lo).values
            # exactly k entries <= thr unless a tie straddles it (ties are in the band)
            unique = int(torch.count_nonzero(band <= thr)) == k - c_lo
        hint["width"] = hint["width"] * 0.9 if thr is not None else hint["width"] * 3
        hint["width"] = min(max(hint["width"], 0.01), 1.0)
    if thr is None:
        thr = torch.kthvalue(key, k).values
        unique = None
    if hint is not None:
        hint["drift"] = float(thr) - hint["thr"] if "thr" in hint else 0.0
        hint["thr"] = float(thr)
        hint.setdefault("width", 0.05)
    rest = torch.gt(key, thr, out=torch.empty_like(key))
    if unique or unique is None and n - _count(rest) == k:  # no tie straddles the k-th value
        return rest
    less = key < thr
    eq = key == thr
    stop = less | (eq & (torch.cumsum(eq, 0) <= k - int(torch.count_nonzero(less))))
    return (~stop).to(key.dtype)


#: The candidates of :func:`_bracket` are the keys within this many bracket
#: half-widths of the bracket's centre when they were collected.
_SPREAD = 6


def _bracket(key, lo, hi, size, hint):
    """The ``size`` keys in ``[lo, hi)``, in no particular order.

    Extracting them from the whole of ``key`` is a boolean mask and a
    compaction, the dearest passes of a training step's selection. So the
    indices of the keys in a wider window (``_SPREAD`` times) are kept in
    ``hint`` and the bracket's keys gathered from those alone; since the
    candidates found in ``[lo, hi)`` are a subset of its keys, they are all
    of them exactly when their number is ``size``. Otherwise (keys moved in
    from outside the window, or the bracket left it) the candidates are
    collected again.
    """
    cand = hint.get("cand")
    if cand is not None and hint["wlo"] <= lo and hi <= hint["whi"]:
        v = key[cand]
        band = _in_range(v, lo, hi)
        if band.numel() == size:
            return band
    centre, half = (lo + hi) / 2, (hi - lo) / 2 * _SPREAD
    wlo, whi = centre - half, centre + half
    cand = torch.gt(_less(key, whi), _less(key, wlo)).nonzero().squeeze(1)   # wlo <= key < whi
    hint.update(cand=cand, wlo=wlo, whi=whi)
    return _in_range(key[cand], lo, hi)


def _in_range(v, lo, hi):
    """The entries of ``v`` in ``[lo, hi)`` (float-output comparisons and
    ``masked_select``: half the time of ``v[(v >= lo) & (v < hi)]`` here)."""
    return torch.masked_select(v, torch.gt(_less(v, hi), _less(v, lo)))


def _view2d(w):
    """``[out, -1]`` view (a 1-D tensor is one row)."""
    return w.reshape(w.shape[0], -1) if w.dim() > 1 else w.reshape(1, -1)


def _check_group(shape2d, group):
    """``(rows, cols)`` of a mask group that tiles the ``[out, fan_in]`` view
    (or of a :data:`NAMED_GROUPS` name)."""
    out, fan_in = shape2d
    if isinstance(group, str):
        if group not in NAMED_GROUPS:
            raise ValueError(f"mask group must be (rows, cols) or one of {', '.join(NAMED_GROUPS)}, "
                             f"not {group!r}")
        return NAMED_GROUPS[group](out, fan_in)
    gr, gc = (int(v) for v in group)
    if gr < 1 or gc < 1 or out % gr or fan_in % gc:
        raise ValueError(f"mask group {gr}x{gc} does not tile a {out} x {fan_in} weight matrix "
                         f"(rows must divide {out}, columns {fan_in})")
    return gr, gc


def _group_mean(t, group):
    """Per-group means of a 2-D tensor, flattened (group-major, row-major)."""
    (gr, gc), (out, fan_in) = group, t.shape
    return t.reshape(out // gr, gr, fan_in // gc, gc).mean(dim=(1, 3)).reshape(-1)


def _expand(mask, group, shape2d):
    """A per-group flat mask back to the 2-D weight view."""
    (gr, gc), (out, fan_in) = group, shape2d
    return mask.reshape(out // gr, 1, fan_in // gc, 1).expand(-1, gr, -1, gc).reshape(shape2d)


class HBBResult(NamedTuple):
    nbits: torch.Tensor     # int8, shaped like w
    w_hat: torch.Tensor     # the reconstruction, shaped like w
    mus: list               # per bit: 0-d tensor, or [out, 1] per channel
    planes: list            # per bit: plane values shaped like w (0 where a weight has fewer bits)
    jac: torch.Tensor       # the backward quantizer's diagonal Jacobian (None: identity / not asked)


def _start_selection(r, a, mix, selection, group):
    """Per-entry counts per bit width for ``mix``, the top width, the step-1 mask and the bound :func:`_rest`."""
    if selection not in ("middle-out", "magnitude"):
        raise ValueError(f"selection {selection!r} cannot be recomputed from the weights")
    if group is not None:
        group = _check_group(r.shape, group)
    size = 1 if group is None else group[0] * group[1]
    counts = {b: c * size for b, c in mix_counts(mix, r.numel() // size).items()}
    rest = functools.partial(_rest, group=group, size=size, shape=r.shape)
    top = max(b for b in range(MAX_BITS + 1) if counts[b])
    m = None if counts[0] == 0 else rest(a, counts[0])  # pruned (0-bit) weights: the smallest |w|
    return counts, top, m, rest


def _rest(key, k, hint=None, *, group, size, shape):
    """0/1 mask (shaped like ``shape``) of all but the ``k`` smallest keys, or
    all but the ``k / size`` blocks with the smallest mean key."""
    if group is None:
        return _rest_after_smallest(key.reshape(-1), k, hint).reshape(shape)
    return _expand(_rest_after_smallest(_group_mean(key, group), k // size, hint), group, shape)


def _start_fixed(r, nbits):
    """Fixed bit counts as int8 in the 2-D view of ``r``, the top width and the step-1 mask."""
    out_bits = nbits.reshape(r.shape).to(torch.int8)
    top = int(out_bits.max()) if r.numel() else 0
    m = None if top == 0 or bool((out_bits >= 1).all()) else (out_bits >= 1).to(r.dtype)
    return out_bits, top, m


def _scale_mu(a, m, per_channel, n_active):
    """mu_b: mean ``|R_b|`` over the active entries (``m`` None: all; ``n_active``: their number if known)."""
    if m is None:
        return a.mean(dim=1, keepdim=True) if per_channel else a.mean()
    if per_channel:  # masked sums as batched dot products (one fused pass)
        return torch.bmm(a.unsqueeze(1), m.unsqueeze(2)).reshape(-1, 1) / m.sum(dim=1, keepdim=True).clamp(min=1)
    if n_active is not None:  # the number of active entries is known: no pass to count it
        return torch.dot(a.reshape(-1), m.reshape(-1)) / n_active
    return torch.dot(a.reshape(-1), m.reshape(-1)) / m.sum().clamp(min=1)


def _plane(r, m, u, q, t, fwd_sign, zero_fix):
    """Plane values of a step: F(u_b) (sign of ``R_b`` for sign planes), 0 where inactive."""
    if m is None:
        return _sign(r) if fwd_sign else q.plane(u, t)
    if fwd_sign:  # +-1 where active, +-0 elsewhere, in one pass
        # a residual R_b (b >= 2) is a difference, never -0.0 where
        # active: sign(0) = +1 needs the + 0.0 only on the weights
        return torch.copysign(m, r + 0.0 if zero_fix else r)
    return q.plane(u, t) * m


def _chain_step(q, u, t, m, keep, first_jac):
    """Fold a step's ``B'(u_b)`` into ``keep = prod (1 - B'(u_b))``; ``first_jac`` keeps ``B'(u_1)``."""
    jb = q.jacobian(u, t)
    first_jac = jb if first_jac is None else first_jac
    step_keep = 1 - jb if m is None else 1 - jb * m
    keep = step_keep if keep is None else keep * step_keep
    return keep, first_jac


def _add_plane(w_hat, r, plane, mu, last):
    """``w_hat += plane * mu``, and ``R -= plane * mu`` but at the last step (its residual is never used)."""
    if w_hat is None:
        w_hat = plane * mu
        if not last:
            r = r - w_hat      # r was a view of the weight: not in place
    else:
        w_hat.addcmul_(plane, mu)
        if not last:
            r.addcmul_(plane, mu, value=-1)
    return w_hat, r


def _tally(m, full_steps, bit_sum):
    """Count a step for the active entries: a weight's bit count is the number of steps it was active in."""
    if m is None:
        return full_steps + 1, bit_sum
    return full_steps, m if bit_sum is None else bit_sum + m


def _next_selected(r, a, m, mu, key_rule, fwd_sign, rest, k, hint):
    """``|R_{b+1}|`` and the mask of step ``b + 1``: the active entries but the ``k`` that stop at ``b`` bits."""
    a_next = r.abs()
    if key_rule == "magnitude":
        key = a
    else:  # with sign planes |R_{b+1}| = ||R_b| - mu_b| is the distance itself
        key = a_next if fwd_sign else (a - mu).abs()
    if m is not None:
        key = key + (1 - m) * 1e30  # inactive entries never stop here
    cont = rest(key, k, hint)
    return a_next, (cont if m is None else m * cont)


def _next_fixed(r, out_bits, b):
    """``|R_{b+1}|`` and the mask of step ``b + 1`` for fixed bit counts."""
    m = (out_bits > b).to(r.dtype)
    return r.abs(), m


def _selected_bits(r, full_steps, bit_sum):
    """The selected bit counts (int8, shaped like ``r``) from the step tally."""
    if bit_sum is None:
        return torch.full(r.shape, full_steps, dtype=torch.int8, device=r.device)
    return bit_sum.to(torch.int8).add_(full_steps)


def _chained_jacobian(keep, first_jac, out_bits, n_pruned, dtype):
    """``J = 1 - prod (1 - B'(u_b))`` shaped like ``out_bits``, with ``B'(u_1)`` on the pruned weights
    (``n_pruned``: their number, None: count them)."""
    jac = 1 - keep
    if n_pruned if n_pruned is not None else bool((out_bits == 0).any()):
        pruned = (out_bits == 0).to(dtype)
        jac = jac * (1 - pruned) + first_jac * pruned
    return jac


def hbb(w, *, nbits=None, mix=None, selection="middle-out", scale="tensor", quantizer=None, t=1.0,
        hints=None, group=None):
    """Bit selection and residual binarization in one pass over ``w`` (any
    shape, viewed as ``[out, -1]``; no gradient).

    Either ``nbits`` (fixed bit counts) or ``mix`` (select them now with the
    ``selection`` rule) must be given. ``quantizer`` (a :class:`Quantizer`;
    default: sign forward, no Jacobian) gives the plane function at progress
    ``t`` and the Jacobian of its backward quantizer B through the whole HBB
    recursion: with ``u_b = R_b / mu_b`` and the scales held constant,
    ``J = 1 - prod_{b <= n} (1 - B'(u_b))`` (one bit: ``B'(u_1)``; a pruned
    weight gets ``B'(u_1)`` too, so it can grow back). ``raw_backward``
    presets use ``B'(w)`` on the raw latent weight instead (the original
    BNN/HBB code). ``hints`` (a dict the caller keeps) warm-starts the
    selection from the previous call.

    Middle-Out: at step ``b`` the ``count[b]`` still-active entries whose
    ``|R_b|`` is closest to their ``mu_b`` stop at ``b`` bits. Magnitude: the
    smallest ``|R_b|`` stop. Pruned (0-bit) weights are the smallest ``|w|``.

    ``group = (rows, cols)`` selects bit counts per block of the ``[out,
    fan_in]`` view instead of per weight (a block's key is its members' mean
    key; the mix counts blocks), so every block has one bit count: what the
    folded hardware needs for cycles and weight memory to follow the average
    bits (PE x SIMD tiles inside the blocks). ``group = "neuron"`` is one
    block per output neuron or channel (``1 x fan_in`` in every layer): what
    the unrolled hardware needs for its area to follow the average bits, since
    each bit-plane of a neuron has a fixed cost there. ``group = "input"`` is
    one block per input (``out x 1``): every neuron of a layer has its
    2-bit weights on the same inputs.
    """
    # Masks are applied by multiplication: torch.where / masked_fill are
    # several times slower than arithmetic on CPU (bench/train_step.py).
    per_channel = scale == "channel"
    r = _view2d(w.detach())
    q = quantizer
    fwd_sign = q is None or q.hard(t)
    chain = q is not None and q.backward != "identity" and not q.raw_backward
    hints = {} if hints is None else hints
    a = r.abs()
    if nbits is None:
        counts, top, m, rest = _start_selection(r, a, mix, selection, group)
        full_steps, bit_sum = 0, None
    else:
        out_bits, top, m = _start_fixed(r, nbits)
    # m: the 0/1 float mask of the entries active at step b (None: all of them)
    w_hat, keep, first_jac, mus, planes = None, None, None, [], []  # keep: see _chain_step
    for b in range(1, top + 1):
        n_active = None if nbits is not None else max(sum(counts[j] for j in range(b, top + 1)), 1)
        mu = _scale_mu(a, m, per_channel, n_active)
        u = r / mu.clamp(min=1e-12) if (chain or not fwd_sign) else None
        plane = _plane(r, m, u, q, t, fwd_sign, b == 1 or nbits is not None)
        if chain:
            keep, first_jac = _chain_step(q, u, t, m, keep, first_jac)
        w_hat, r = _add_plane(w_hat, r, plane, mu, b == top)
        if nbits is None:
            full_steps, bit_sum = _tally(m, full_steps, bit_sum)
        if b < top:
            a, m = (_next_fixed(r, out_bits, b) if nbits is not None else
                    _next_selected(r, a, m, mu, selection, fwd_sign, rest, counts[b], hints.setdefault(b, {})))
        mus.append(mu)
        planes.append(plane.reshape(w.shape))
    out_bits = _selected_bits(r, full_steps, bit_sum) if nbits is None else out_bits
    w_hat = torch.zeros_like(r) if w_hat is None else w_hat
    if chain and first_jac is not None:
        n_pruned = counts[0] if nbits is None else None
        jac = _chained_jacobian(keep, first_jac, out_bits, n_pruned, r.dtype).reshape(w.shape)
    else:
        jac = q.jacobian(w.detach(), t) if q is not None and q.backward != "identity" else None
    return HBBResult(out_bits.reshape(w.shape), w_hat.reshape(w.shape), mus, planes, jac)


def select_bits(w, mix, selection="middle-out", scale="tensor", group=None):
    """Per-weight bit counts (int8, shaped like ``w``) for ``mix`` by ``selection``."""
    return hbb(w, mix=mix, selection=selection, scale=scale, group=group).nbits


def random_bits(shape, mix, generator=None, group=None):
    """A random assignment with the exact counts of ``mix`` (the baseline
    rule); per ``group`` block of the ``[out, fan_in]`` view if given."""
    shape2d = (shape[0], math.prod(shape[1:])) if len(shape) > 1 else (1, shape[0])
    group = (1, 1) if group is None else _check_group(shape2d, group)
    n = math.prod(shape) // (group[0] * group[1])
    counts = mix_counts(mix, n)
    values = torch.cat([torch.full((counts[b],), b, dtype=torch.int8) for b in range(MAX_BITS + 1)])
    return _expand(values[torch.randperm(n, generator=generator)], group, shape2d).reshape(shape)


def residual_binarize(w, nbits, scale="tensor"):
    """Residual binarization of ``w`` with fixed bit counts: ``(w_hat, mus, planes)``."""
    res = hbb(w, nbits=nbits, scale=scale)
    return res.w_hat, res.mus, res.planes


class _Pullback(torch.autograd.Function):
    """Forward: the reconstruction ``w_hat``; backward: the incoming gradient
    times B's diagonal Jacobian (identity when ``jac`` is None)."""

    @staticmethod
    def forward(ctx, w, w_hat, jac):
        ctx.jac = jac
        return w_hat

    @staticmethod
    def backward(ctx, grad):
        return (grad if ctx.jac is None else grad * ctx.jac), None, None


def pullback(w, w_hat, jac):
    """``w_hat`` in the forward pass, with the gradient reaching it pulled
    back to ``w`` through the backward quantizer's diagonal Jacobian ``jac``
    (identity when None): the ProxConnect++ update."""
    return _Pullback.apply(w, w_hat, jac)


def hbb_quantize(w, nbits, quantizer="bnn", scale="tensor", t=1.0):
    """Differentiable HBB weights for fixed ``nbits``: the forward value is the
    residual binarization with ``quantizer``'s planes at progress ``t``; the
    gradient is pulled back through the backward quantizer's Jacobian."""
    q = get_quantizer(quantizer) if isinstance(quantizer, str) else quantizer
    res = hbb(w, nbits=nbits, scale=scale, quantizer=q, t=t)
    return pullback(w, res.w_hat, res.jac)
