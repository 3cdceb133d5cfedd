"""Boundary vectors: inputs that put each neuron's integer sum next to its threshold.

A dataset exercises a threshold only where its images happen to land near
it, so a threshold moved into a gap between the data's sums, or a scale
off by one, passes any number of real images. These vectors are built from
the weights instead. For every neuron of a threshold layer, with the
neuron written over its input bits as ``P . x >= T`` (``P`` without a
common factor, :func:`hwgen.tools.symbolic.reference_forms`):

* ``below``: an input whose sum is the largest reachable one under ``T``
  (``T - 1`` where reachable);
* ``at``: the smallest reachable sum at or over ``T``;
* ``above``: the next reachable sum after that;

each in ``variants`` versions that differ in which inputs carry the sum
(swaps that keep it), so that a flipped weight is seen too. The reachable
sums are enumerated exactly (a bitset, as the proof does) where that is
small enough; beyond that a greedy descent looks for ``T - 1`` and ``T``
and a neuron counts as *covered* only if it finds both. Every neuron, of
the scores layer too, also gets the two inputs that take its sum to its
extremes (wrap-around), and every layer its all-low and all-high input.

A layer's vectors are codes as its RTL port reads them: pixels for a
``uint`` layer, bits (1 = +1) for a binary one; a conv layer's are windows
in its fan-in order. :func:`network_inputs` turns the first layer's into
network inputs. Numpy only: no torch.
"""
from dataclasses import dataclass, field, replace

import numpy as np

from ..core import reference
from .symbolic import MAX_REACH_BITS, Unsupported, _add, _normalize, _Reach, _separate, reference_forms

__all__ = ["LayerVectors", "layer_vectors", "network_inputs", "golden_codes", "DEFAULT_VARIANTS"]

#: versions of each boundary input (which inputs carry the sum)
DEFAULT_VARIANTS = 8
#: the exact enumeration is used while (input bits) x (distinct sums) stays under this
MAX_REACH_WORK = 1 << 34
#: layers of up to this many input bits search for inputs that tell each scale +-1
#: apart from several starts (the greedy costs (input bits)^2); wider layers
#: search from their own boundary vectors only, a bounded number of flips
MAX_SEPARATE_BITS = 1024
#: the flips each start of a wide layer's scale search may take
WIDE_SEPARATE_STEPS = 256


@dataclass
class LayerVectors:
    """One layer's boundary vectors and what they reach."""
    layer: str
    inputs: np.ndarray                  # int64 [n, fan_in]: codes as the layer's port reads them
    what: list                          # per vector: (neuron or None, "below" | "at" | "above" | "max" | "min" | ...)
    neurons: int
    covered: int | None                 # threshold neurons with both sides of the threshold reached (None: scores)
    uncovered: list = field(default_factory=list)   # their indices, where not
    exact: bool = True                  # every neuron's reachable sums were enumerated exactly
    note: str = ""


def _fan_in_view(layer):
    """The layer as a dense one over its fan-in (a conv layer: one window)."""
    if layer.op == "conv2d":
        return replace(layer, op="dense", in_shape=None, kernel=None, pool=1)
    return layer


def golden_codes(layer, codes):
    """The artifact's outputs for fan-in vectors ``codes`` (int [n, fan_in],
    port codes): int64 ``[n, out]``, 0/1 fire bits of a threshold layer (a
    conv layer's channels of one window, before any pooling) or scores."""
    view = _fan_in_view(layer)
    values = np.asarray(codes, dtype=np.int64)
    if view.input == "binary":
        values = 2 * values - (2 ** view.input_bits - 1)
    out = reference.layer_output(view, values)
    return out if view.output == "scores" else (out + 1) // 2


def _bits_to_codes(layer, bits):
    """Input-bit assignments [n, fan_in * bits] to port codes [n, fan_in]."""
    b = layer.input_bits
    weights = (1 << np.arange(b, dtype=np.int64)) if layer.input == "uint" else \
        np.array([1], dtype=np.int64)
    return bits.reshape(len(bits), layer.in_features, -1) @ weights


def layer_vectors(layer, variants=DEFAULT_VARIANTS, seed=0):
    """The boundary vectors of ``layer`` (see the module docstring)."""
    view = _fan_in_view(layer)
    rng = np.random.default_rng([seed, sum(map(ord, layer.name))])
    try:
        kind, forms = reference_forms(view)
    except Unsupported as exc:
        return LayerVectors(layer.name, np.zeros((0, view.in_features), np.int64), [], view.out_features, 0,
                            list(range(view.out_features)), False, f"no boundary vectors: {exc}")
    n_vars = view.in_features * (view.input_bits if view.input == "uint" else 1)
    rows, what = [np.zeros(n_vars, np.int64), np.ones(n_vars, np.int64)], [(None, "all low"), (None, "all high")]
    covered, uncovered, exact = 0, [], True
    planes = _plane_forms(view) if kind == "threshold" else []
    wide = n_vars > MAX_SEPARATE_BITS
    for o, (coeffs, _) in enumerate(forms):
        for high in (True, False):
            x = rng.integers(0, 2, n_vars)
            for v, a in coeffs.items():
                x[v] = int((a > 0) == high)
            rows.append(x)
            what.append((o, "max" if high else "min"))
        if kind != "threshold":
            continue
        found, hit, was_exact = _boundary(_normalize(forms[o]), n_vars, variants, rng)
        exact &= was_exact
        for label, x in found:
            rows.append(x)
            what.append((o, label))
        covered += hit
        if not hit:
            uncovered.append(o)
        for b, plane in enumerate(planes):
            for sign in (1, -1):       # the neuron with this plane's scale one more, one less
                other = _add(forms[o], plane[o], sign)
                x = _separates_from(forms[o], other, n_vars, [bits for _, bits in found]) if wide else \
                    _separates(forms[o], other, n_vars, rng)
                if x is not None:
                    rows.append(x)
                    what.append((o, f"scale {b + 1}"))
    codes = _bits_to_codes(view, np.array(rows, dtype=np.int64))
    return LayerVectors(layer.name, codes, what, view.out_features, covered if kind == "threshold" else None,
                        uncovered, exact)


def _plane_forms(layer):
    """Per bit-plane ``b``, each neuron's plane sum ``P_b`` as a form over the
    input bits, signed as the neuron's threshold form is (so that scale
    ``alpha_b + 1`` adds it)."""
    out = []
    for b in range(layer.max_bits):
        alpha = np.zeros_like(layer.alpha)
        alpha[:, b] = 1
        if not layer.nbits.max() > b:
            continue
        one = replace(layer, alpha=alpha, threshold=np.zeros_like(layer.threshold))
        out.append(reference_forms(one)[1])
    return out


def _separates(form, other, n_vars, rng):
    """Bits on which thresholds ``form >= 0`` and ``other >= 0`` differ, found
    by :func:`hwgen.tools.symbolic._separate` either way round, or None."""
    a, b = _normalize(form), _normalize(other)
    if a == b:
        return None
    found = _separate(a, b) or _separate(b, a)
    if found is None:
        return None
    x = rng.integers(0, 2, n_vars)
    names = set(a[0]) | set(b[0])
    for v in names:
        x[v] = found.get(v, 0)
    return x


def _separates_from(form, other, n_vars, starts, steps=None):
    """For a wide layer: bits on which thresholds ``form >= 0`` and ``other
    >= 0`` differ, found by the greedy descent of
    :func:`hwgen.tools.symbolic._separate`, vectorized, from ``starts`` only
    (the neuron's boundary vectors, next to both thresholds), at most
    ``steps`` flips each (:data:`WIDE_SEPARATE_STEPS`); or None. A search."""
    a, b = _normalize(form), _normalize(other)
    if a == b or not starts:
        return None
    steps = WIDE_SEPARATE_STEPS if steps is None else steps
    for (pa, ta), (pb, tb) in ((a, b), (b, a)):     # pa . x >= ta and not pb . x >= tb
        ca, cb = np.zeros(n_vars, np.int64), np.zeros(n_vars, np.int64)
        for v, c in pa.items():
            ca[v] = c
        for v, c in pb.items():
            cb[v] = c
        for start in starts:
            x = np.array(start, dtype=np.int64)
            sa, sb = int(ca @ x) - ta, int(cb @ x) - tb
            for _ in range(steps + 1):
                penalty = max(0, -sa) + max(0, sb + 1)
                if penalty == 0:
                    return x
                sign = 1 - 2 * x          # flipping bit v adds sign[v] * its coefficient
                na, nb = sa + sign * ca, sb + sign * cb
                pens = np.maximum(0, -na) + np.maximum(0, nb + 1)
                v = int(np.argmin(pens))
                if pens[v] >= penalty:
                    break
                x[v] ^= 1
                sa, sb = int(na[v]), int(nb[v])
    return None


def _boundary(normalized, n_vars, variants, rng):
    """``([(label, bits)], covered, exact)`` for one threshold ``P . x >= T``."""
    p, t = normalized
    if not p:                                  # a constant neuron: nothing to reach
        return [], True, True
    span = sum(abs(a) for a in p.values()) + 1
    if span <= MAX_REACH_BITS and span * len(p) <= MAX_REACH_WORK:
        try:
            return (*_exact(p, t, n_vars, variants, rng), True)
        except Unsupported:
            pass
    found = _split(p, t, n_vars, variants, rng)
    labels = {label for label, _ in found}
    return found, labels == {"below", "at"}, False


def _exact(p, t, n_vars, variants, rng):
    reach = _Reach(p)
    lo, hi = reach.base, reach.base + sum(abs(a) for a in p.values())
    below = reach.last_in(lo, t)
    at = reach.first_in(t, hi + 1)
    above = None if at is None else reach.first_in(at + 1, hi + 1)
    found = []
    for label, total in (("below", below), ("at", at), ("above", above)):
        if total is None:
            continue
        assignment = reach.witness(total)
        base = rng.integers(0, 2, n_vars)
        for v, b in assignment.items():
            base[v] = b
        for k in range(variants):
            found.append((label, base if k == 0 else _reshuffle(p, base, rng)))
    # both sides reached, or the threshold lies beyond every sum (the neuron is constant)
    return found, True


def _reshuffle(p, x, rng):
    """``x`` with the bits of each group of equal ``|P_v|`` redrawn so that the
    group's share of ``P . x`` (count set among ``+a`` minus among ``-a``) stays."""
    x = x.copy()
    groups = {}
    for v, a in p.items():
        groups.setdefault(abs(a), ([], []))[a < 0].append(v)
    for pos, neg in groups.values():
        pos, neg = np.array(pos, dtype=np.int64), np.array(neg, dtype=np.int64)
        k_pos, k_neg = int(x[pos].sum()) if len(pos) else 0, int(x[neg].sum()) if len(neg) else 0
        d = k_pos - k_neg
        lo, hi = max(0, d), min(len(pos), len(neg) + d)
        k_pos = int(rng.integers(lo, hi + 1))
        for members, k in ((pos, k_pos), (neg, k_pos - d)):
            if len(members):
                x[members] = 0
                x[rng.permutation(members)[:k]] = 1
    return x


#: distinct sums of the small-coefficient inputs that :func:`_split` enumerates exactly
SPLIT_SPAN = 1 << 16


def _split(p, t, n_vars, variants, rng):
    """``[(label, bits)]`` with ``P . x`` exactly ``T - 1`` ("below") and
    ``T`` ("at"), where they are found, for a neuron too large to enumerate:
    the inputs of the smallest coefficients (``SPLIT_SPAN`` distinct sums)
    are solved exactly, the others set greedily, largest first, so that the
    rest of the sum lands in the middle of what those can reach."""
    order = sorted(p, key=lambda v: (abs(p[v]), v))
    small, span = [], 0
    for v in order:
        if small and span + abs(p[v]) > SPLIT_SPAN:
            break
        small.append(v)
        span += abs(p[v])
    large = order[len(small):][::-1]
    reach = _Reach({v: p[v] for v in small})
    middle = reach.base + span // 2
    found = []
    for label, target in (("below", t - 1), ("at", t)):
        for _ in range(variants):
            x = rng.integers(0, 2, n_vars)
            rest = sum(p[v] * int(x[v]) for v in large)
            for v in large:
                step = -p[v] if x[v] else p[v]
                if abs(target - middle - rest - step) < abs(target - middle - rest):
                    x[v] ^= 1
                    rest += step
            if reach.first_in(target - rest, target - rest + 1) is not None:
                for v, b in reach.witness(target - rest).items():
                    x[v] = b
                found.append((label, x))
    return found


def network_inputs(model, vectors, seed=0):
    """The first layer's boundary vectors as network inputs (int64 ``[n,
    input_features]``): the vectors themselves for a dense first layer;
    for a conv layer each window is placed at a random position of an
    otherwise random image, so its output pixel sits at the boundary."""
    first = model.layers[0]
    codes = vectors.inputs
    if first.op != "conv2d":
        return codes.copy()
    rng = np.random.default_rng([seed, 1])
    c, h, w = first.in_shape
    kh, kw = first.kernel
    _, oh, ow = first.conv_shape
    images = rng.integers(0, 2 ** model.input_bits, size=(len(codes), c, h, w), dtype=np.int64)
    for n, window in enumerate(codes):
        y, x = int(rng.integers(0, oh)), int(rng.integers(0, ow))
        images[n, :, y:y + kh, x:x + kw] = window.reshape(c, kh, kw)
    return images.reshape(len(codes), -1)
