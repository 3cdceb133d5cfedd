"""Arithmetic builders shared by the datapaths.

Yosys's ``alumacc`` merges any chain or tree of ``+`` into one multi-operand
adder and maps that poorly onto LUT + carry-chain FPGAs (about 2 iCE40 LUT4
per popcount input). The builders here keep every intermediate sum in its own
``Signal`` with the ``keep`` attribute, so each adder stays a two-operand
carry-chain adder of the narrowest width its value range needs:

* :meth:`Adders.popcount` -- the "tight carry tree": a subtree over
  ``2^(L+1) - 1`` bits is one raw bit fed to the carry-in plus two subtrees
  over ``2^L - 1`` bits, down to 3-bit leaves that are full adders (where an
  XNOR inversion folds into the LUT for free). Carry-in slots get
  non-inverted bits, because a carry input cannot absorb an inverter; if most
  terms are inverted the tree counts their complements instead.
* :meth:`Adders.at_least` -- ``popcount >= T`` fused into the tree's last
  carry chain: one raw bit ``r`` is held out, and the comparison is bit ``W``
  of ``S + (2^W - T) + r``, which costs carry cells only.
* :meth:`Adders.sum` -- a balanced tree of kept two-operand adds over
  unsigned multi-bit values (the MAC's positive and negative halves).
* :meth:`Adders.scaled_sum` -- ``sum w_i * v_i`` for constant ``w_i``: one
  shifted copy of ``v_i`` per nonzero digit of ``w_i``'s non-adjacent form,
  summed by a tree of kept two-operand adds and subtracts (a pipelined
  neuron's weighted bit-planes).

With ``family="xc7"``, popcounts are instead bit heaps of LUT6_2 / CARRY4
primitives (:mod:`hwgen.rtl.xc7`), about half the LUTs, and
:meth:`Adders.weighted` builds a whole neuron (every plane, its scale, the
threshold or bias) as one such heap.

``tree_sum`` is the plain, unkept form, for small sums where the structure
does not matter.
"""
from amaranth.hdl import Const, Signal, unsigned

__all__ = ["FAMILIES", "Adders", "Staged", "delayed", "tree_sum", "width_for"]

KEEP = {"keep": 1}

#: device families the datapath can be built for: ``generic`` (portable
#: Verilog: kept ``+`` trees that every synthesis target maps) and ``xc7``
#: (7-series primitives in the popcounts; only Yosys's xc7 flow maps them)
from ..core.design import FAMILIES  # noqa: E402  (one definition, on the integer side)


def tree_sum(terms):
    """Balanced adder tree over ``terms`` (Amaranth values); ``Const(0)`` if empty.

    Amaranth widens each ``+`` by one bit, so a balanced tree of n one-bit
    terms ends ``ceil(log2 n) + 1`` bits wide: never more than it needs.
    """
    terms = list(terms)
    if not terms:
        return Const(0, unsigned(1))
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]


def delayed(m, enable, value, cycles, name):
    """``value`` through ``cycles`` registers that load when ``enable`` is set."""
    for d in range(cycles):
        reg = Signal(value.shape(), name=f"{name}_d{d}")
        with m.If(enable):
            m.d.sync += reg.eq(value)
        value = reg
    return value


def width_for(lo, hi):
    """``(width, signed)`` of the narrowest integer type holding ``lo..hi``."""
    lo, hi = int(lo), int(hi)
    if lo >= 0:
        return max(hi.bit_length(), 1), False
    return max((-lo - 1).bit_length(), hi.bit_length()) + 1, True


def _slots(size):
    """Carry-in slots of a tight tree over ``size`` terms (see ``_tree``)."""
    if size <= 3:
        return 0
    left = size // 2
    return 1 + _slots(left) + _slots(size - 1 - left)


def _naf(w):
    """``w``'s non-adjacent form: ``[(sign, shift)]`` with ``w = sum sign *
    2^shift``, the fewest nonzero signed digits (no two adjacent)."""
    digits, sign, w, shift = [], 1 if w > 0 else -1, abs(w), 0
    while w:
        if w & 1:
            d = 2 - (w & 3)        # +1, or -1 where a run of ones starts
            digits.append((sign * d, shift))
            w -= d
        w >>= 1
        shift += 1
    return digits


class Staged:
    """A value inside a pipelined datapath: ``stage`` registers passed, and
    ``depth`` adder levels since the last register."""
    __slots__ = ("value", "stage", "depth")

    def __init__(self, value, stage=0, depth=0):
        self.value, self.stage, self.depth = value, stage, depth


class Adders:
    """Builds kept adder structures into module ``m``.

    ``every = k > 0`` pipelines them: the result of every k-th adder level is
    registered in the ``sync`` domain, and operands from different stages are
    delayed to the latest one, so every path through the structure passes
    the same number of registers. ``every = 0`` keeps everything
    combinational. Signals are named ``{prefix}_{k}`` in creation order, so
    the same calls always give the same netlist. ``family = "xc7"`` builds
    popcounts and :meth:`weighted` sums and thresholds as LUT6_2 / CARRY4 bit
    heaps, each one adder level for the pipelining (registers go around a
    heap, not inside it).
    """

    def __init__(self, m, prefix, every=0, family="generic"):
        if family not in FAMILIES:
            raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
        self._m, self._prefix, self._count, self._every = m, prefix, 0, int(every)
        self._family = family
        self._delays = {}

    def _name(self):
        self._count += 1
        return f"{self._prefix}_{self._count - 1}"

    def delay(self, item, stage):
        """``item`` (a :class:`Staged`) delayed to ``stage``: a register chain,
        shared between the users of the same value."""
        value = item.value
        for s in range(item.stage, stage):
            key = (id(item.value), s)
            if key not in self._delays:
                reg = Signal(value.shape(), name=f"{self._name()}_d")
                self._m.d.sync += reg.eq(value)
                self._delays[key] = (reg, item.value)   # holds item.value alive: ids stay unique
            value = self._delays[key][0]
        return value

    def node(self, fn, items, hi=None, lo=0):
        """One adder level: ``fn(*values)`` of ``items`` (aligned to a common
        stage). With ``hi``, the result is an integer in ``lo..hi`` and kept."""
        stage = max(i.stage for i in items)
        depth = max(i.depth for i in items if i.stage == stage) + 1
        value = fn(*(self.delay(i, stage) for i in items))
        if hi is not None:
            sig = Signal(range(lo, hi + 1), name=self._name(), attrs=KEEP)
            self._m.d.comb += sig.eq(value)
            value = sig
        if self._every and depth >= self._every:
            reg = Signal(value.shape(), name=f"{self._name()}_r")
            self._m.d.sync += reg.eq(value)
            return Staged(reg, stage + 1, 0)
        return Staged(value, stage, depth)

    # -- popcount ------------------------------------------------------------
    @staticmethod
    def _orient(terms, slots):
        """Split ``terms`` (``(bit, inverted)`` pairs) into carry-in bits and
        leaf terms. Returns ``(carry_bits, leaf_values, complemented)``:
        when too few terms are non-inverted, the complements are counted
        (``popcount = n - result``)."""
        bare = sum(1 for _, inv in terms if not inv)
        complemented = bare < slots and len(terms) - bare >= slots
        if complemented:
            terms = [(bit, not inv) for bit, inv in terms]
        carry, leaves = [], []
        for bit, inv in terms:
            if not inv and len(carry) < slots:
                carry.append(Staged(bit))
            else:
                leaves.append(Staged(~bit if inv else bit))
        return carry, leaves, complemented

    def _tree(self, size, carry, leaves):
        """Tight carry tree over ``size`` terms, consuming ``carry`` for the
        carry-in slots and ``leaves`` for the rest (both lists are popped)."""
        if size <= 3:
            terms = [leaves.pop() for _ in range(size)]
            if size == 1:
                return terms[0]
            return self.node(lambda *t: tree_sum(t), terms, size)
        left = size // 2
        a = self._tree(left, carry, leaves)
        b = self._tree(size - 1 - left, carry, leaves)
        cin = carry.pop() if carry else leaves.pop()
        return self.node(lambda a, b, c: a + b + c, [a, b, cin], size)

    def popcount(self, terms):
        """Number of true terms, as ``(staged value, n, complemented)``: the
        count is ``value`` or, if ``complemented``, ``n - value``.

        ``terms``: ``(bit, inverted)`` pairs, a term being ``~bit`` when
        ``inverted``.
        """
        terms = list(terms)
        n = len(terms)
        if n == 0:
            return Staged(Const(0, unsigned(1))), 0, False
        if self._family == "xc7" and n > 1:
            return self._heap(terms), n, False
        carry, leaves, complemented = self._orient(terms, _slots(n))
        leaves.reverse()  # popped from the end: keep input order in the netlist
        carry.reverse()
        return self._tree(n, carry, leaves), n, complemented

    def at_least(self, terms, threshold):
        """Staged 1-bit value: at least ``threshold`` of ``terms`` are true."""
        terms = list(terms)
        n, t = len(terms), int(threshold)
        if t <= 0 or t > n:
            return Staged(Const(int(t <= 0), 1))
        bare = sum(1 for _, inv in terms if not inv)
        if bare == 0 or (bare < _slots(n - 1) + 1 and n - bare > bare):
            # count the complements: popcount >= t  <=>  not count(~term) >= n - t + 1
            flipped = self.at_least([(bit, not inv) for bit, inv in terms], n - t + 1)
            return Staged(~flipped.value, flipped.stage, flipped.depth)
        held = next(i for i, (_, inv) in enumerate(terms) if not inv)
        r = Staged(terms[held][0])
        count, size, complemented = self.popcount(terms[:held] + terms[held + 1:])
        if complemented:  # (size - count) + r >= t, as a plain compare
            return self.node(lambda c, r: (size - c + r) >= t, [count, r])
        width = max(size.bit_length(), 1)
        # count + r >= t  <=>  bit `width` of count + (2^width - t) + r is set
        # (count + r <= n <= 2^width and t >= 1 keep the sum below 2^(width+1)).
        total = self.node(lambda c, r: c + Const((1 << width) - t, width) + r, [count, r],
                          (1 << (width + 1)) - 1)
        return Staged(total.value[width], total.stage, total.depth)

    def _heap(self, terms):
        """The count of ``terms`` as an xc7 bit heap, one kept adder level
        (xc7 thresholds are built by :meth:`weighted`)."""
        from .xc7 import Heap
        heap = Heap([inv for _, inv in terms])
        name = self._name()
        return self.node(lambda *bits: heap.emit(self._m, bits, name), [Staged(bit) for bit, _ in terms],
                         len(terms))

    def weighted(self, groups, const, threshold=None, width=None, values=()):
        """xc7: ``Y = const + sum_g w_g * sum_(bit, inv, col) 2^col * t`` (``t``
        = ``bit`` or ``~bit``) ``+ sum_v w_v * v`` as bit heaps, with no
        multiplier or comparator:
        the staged decision ``Y >= threshold``, or with ``width`` the staged
        ``Y mod 2^width`` (unsigned; a signed result's two's complement).

        ``groups``: ``(w, [(bit, inverted, column), ...])``, ``w`` a nonzero
        integer (a bit-plane's scale). ``values``: ``(w, staged, hi)``,
        unsigned staged values ``0 <= v <= hi`` (a sum shared by several
        neurons) entering bit by bit. Negative weights count the
        complements (``-t = ~t - 1``). For a threshold, all weights are
        first divided by their common factor. A group whose weight has one
        set bit puts its bits straight into the neuron's heap at shifted
        columns; otherwise it is counted in a heap of its own first, if that
        is fewer bits, and its count's bits enter once per set bit of ``w``.
        """
        from math import gcd

        from .xc7 import Heap
        if self._family != "xc7" or (threshold is None) == (width is None):
            raise ValueError("weighted() builds xc7 bit heaps and takes a threshold or a width")
        groups = [(int(w), list(bits)) for w, bits in groups if int(w) and bits]
        norm = []
        for w, bits in groups:       # w * t = |w| * ~t - |w| for w < 0
            if w < 0:
                const += w * sum(1 << c for _, _, c in bits)
                w, bits = -w, [(b, not inv, c) for b, inv, c in bits]
            norm.append((w, bits))
        wide = []                    # (w > 0, staged, bits, inverted)
        for w, value, hi in values:
            w, n = int(w), max(int(hi).bit_length(), 1)
            if w:
                if w < 0:            # w * v = |w| * ~v - |w| * (2^n - 1)
                    const += w * ((1 << n) - 1)
                wide.append((abs(w), value, n, w < 0))
        if threshold is not None:
            g = 0
            for w in [w for w, _ in norm] + [w for w, _, _, _ in wide]:
                g = gcd(g, w)
            g = max(g, 1)            # w * V >= T - const  <=>  (w/g) * V >= ceil((T - const) / g)
            t = -(-(int(threshold) - const) // g)
            norm, const, threshold = [(w // g, bits) for w, bits in norm], 0, t
            wide = [(w // g, value, n, inv) for w, value, n, inv in wide]
            vmax = sum(w * sum(1 << c for _, _, c in bits) for w, bits in norm) + \
                sum(w * ((1 << n) - 1) for w, _, n, _ in wide)
            if threshold <= 0 or threshold > vmax:
                return Staged(Const(int(threshold <= 0), 1))
        # sources: staged values the final heap reads; placed: (source, bit index or None, inv, column)
        sources, placed = [], []
        for w, bits in norm:
            shifts = [k for k in range(w.bit_length()) if (w >> k) & 1]
            top = sum(1 << c for _, _, c in bits)
            count_bits = top.bit_length()
            if len(shifts) > 1 and len(bits) + count_bits * len(shifts) < len(bits) * len(shifts):
                heap = Heap([inv for _, inv, _ in bits], columns=[c for _, _, c in bits])
                name = self._name()
                count = self.node(lambda *v, heap=heap, name=name: heap.emit(self._m, v, name),
                                  [Staged(b) for b, _, _ in bits], top)
                sources.append(count)
                placed += [(len(sources) - 1, i, False, i + k) for i in range(count_bits) for k in shifts]
            else:
                for b, inv, c in bits:
                    sources.append(Staged(b))
                    placed += [(len(sources) - 1, None, inv, c + k) for k in shifts]
        for w, value, n, inv in wide:
            sources.append(value)
            placed += [(len(sources) - 1, i, inv, i + k) for i in range(n) for k in range(w.bit_length())
                       if (w >> k) & 1]
        if not placed:
            return Staged(Const(const % (1 << width), width)) if threshold is None else \
                Staged(Const(int(const >= threshold), 1))
        if threshold is None:
            heap = Heap([p[2] for p in placed], columns=[p[3] for p in placed], const=const, width=width)
            hi = (1 << width) - 1
        else:
            heap = Heap([p[2] for p in placed], threshold, columns=[p[3] for p in placed])
            hi = 1
        name = self._name()

        def build(*values):
            return heap.emit(self._m, [values[s] if i is None else values[s][i] for s, i, _, _ in placed], name)
        return self.node(build, sources, hi)

    # -- multi-bit sums --------------------------------------------------------
    def scaled_sum(self, items):
        """``sum_i w_i * v_i`` for staged integers ``lo_i <= v_i <= hi_i`` and
        integer constants ``w_i`` (``items``: ``(staged, w, lo, hi)``) as
        ``(staged value, lo, hi)``: no multiplier, but one shifted copy of
        ``v_i`` per nonzero digit of ``w_i``'s non-adjacent form, summed by a
        balanced tree of kept two-operand adds and subtracts. Each level is
        one carry chain, so pipelined at every level it runs as fast as an
        accumulator; a one-level ``sum(w * v)`` is one ``$macc`` (fewer
        LUTs, but all of its depth in one clock)."""
        terms = [(v, sign, shift, int(lo), int(hi)) for v, w, lo, hi in items for sign, shift in _naf(int(w))]
        if not terms:
            return Staged(Const(0, unsigned(1))), 0, 0
        while len(terms) > 1:
            nxt = [self._scaled_pair(*terms[i:i + 2]) for i in range(0, len(terms) - 1, 2)]
            terms = nxt + terms[len(terms) - len(terms) % 2:]
        v, sign, shift, lo, hi = terms[0]
        if sign < 0:
            v, lo, hi = self.node(lambda x: -x, [v], -lo, -hi), -hi, -lo
        return Staged(v.value << shift, v.stage, v.depth), lo << shift, hi << shift

    def _scaled_pair(self, a, b):
        """Two terms ``sign * (v << shift)`` (with ``v``'s bounds) as one."""
        (va, sa, ka, la, ha), (vb, sb, kb, lb, hb) = sorted((a, b), key=lambda t: -t[1])
        k = min(ka, kb)
        la, ha, lb, hb = la << (ka - k), ha << (ka - k), lb << (kb - k), hb << (kb - k)
        if sa == sb:    # both positive or both negative: add, keep the sign
            lo, hi = la + lb, ha + hb
            value = self.node(lambda x, y: (x << (ka - k)) + (y << (kb - k)), [va, vb], hi, lo)
        else:           # a positive, b negative
            lo, hi = la - hb, ha - lb
            value = self.node(lambda x, y: (x << (ka - k)) - (y << (kb - k)), [va, vb], hi, lo)
        return value, sa if sa == sb else 1, k, lo, hi

    def sum(self, values):
        """Sum of unsigned ``(staged value, hi)`` pairs (``0 <= value <= hi``)
        as ``(staged value, hi)``: a balanced tree of kept two-operand adds."""
        values = [(v, int(h)) for v, h in values if int(h) > 0]
        if not values:
            return Staged(Const(0, unsigned(1))), 0
        while len(values) > 1:
            nxt = []
            for i in range(0, len(values) - 1, 2):
                (a, ha), (b, hb) = values[i], values[i + 1]
                nxt.append((self.node(lambda a, b: a + b, [a, b], ha + hb), ha + hb))
            if len(values) % 2:
                nxt.append(values[-1])
            values = nxt
        return values[0]
