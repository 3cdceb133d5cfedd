"""AMD/Xilinx 7-series bit heaps from LUT6_2 and CARRY4 primitives: the
popcounts, weighted sums and thresholds of ``hwgen rtl --family xc7``
(:meth:`hwgen.rtl.arith.Adders.weighted` maps a neuron onto them).

A *bit heap* (bits grouped by column, i.e. by weight ``2^c``) is reduced by
carry-chain ternary adders until each column holds at most three bits, then
one last chain adds them up. Measured against the kept adder trees of
:mod:`hwgen.rtl.arith` (1.12-1.24 xc7 LUT per input bit), this takes
0.61 / 0.53 / 0.51 LUT per bit at 64 / 256 / 1024 inputs (docs/results.md,
"LUTs per weight bit"; the standalone prototype, bench/xc7_heap, is in the git history up to 664390c).

* **A chain** over columns ``lo .. lo+k-1`` takes up to three heap bits per
  column. Column ``j`` is one ``LUT6_2`` with ``I5 = 1``: ``O6 = a ^ b ^ c
  ^ prev`` drives the ``CARRY4`` ``S`` input, ``O5 = maj(a, b, c)`` is the
  next column's ``prev`` (a LUT input and that column's ``DI``). The chain
  also takes a raw bit ``d`` (the first column's ``prev``) and a carry-in
  ``e``, and gives ``k`` sum bits (``CARRY4.O``) plus two bits one column
  above (the last ``O5`` and ``CO``): two heap bits fewer per LUT.
* **Chains share CARRY4s**: each starts with an *injector* position, ``S =
  0`` and ``DI = e``, which cuts the previous chain's carry and brings in
  its own. Up to :data:`PACK` CARRY4s are chained so.
* **Inversions are free** where a bit enters a LUT (the INIT absorbs it), so
  XNOR weights cost nothing; ``d``, ``e`` and ``DI`` have no LUT, so only
  non-inverted inputs, constants and computed bits are used there.
* **Threshold** (``V >= T``, ``V`` the heap's sum): with the smallest ``M``
  such that ``2^M > max V - T`` and ``2^M >= T``, the constant ``2^M - T``
  joins the heap and the answer is the final chain's sum bit ``M``; there
  is no comparator. A sum is the final chain's sum bits, a constant added
  the same way, modulo the output width (bits above it are dropped early).
* Where no chain gains (at most two raw bits in a small column), a stage of
  3:2 counters (one LUT6_2 each) runs instead, so every heap reduces.

The structure is first built as a plain netlist (:class:`Heap`), which
:meth:`Heap.evaluate` runs in Python for tests and :meth:`Heap.emit` turns
into ``Instance`` cells: Yosys's ``synth_xilinx`` keeps instantiated cells as
they are; simulators read ``rtl_templates/xc7_cells_sim.v``, which the
tests prove equal to Yosys's own models.
Not placed or timed (no open 7-series placer is available here): the depth is
11 / 15 / 19 LUT levels plus the carry ripple at 64 / 256 / 1024 inputs.
"""
from collections import defaultdict

import numpy as np
from amaranth.hdl import Cat, Const, Instance, Signal

__all__ = ["ONE", "PACK", "ZERO", "Heap"]

#: CARRY4s per shared carry chain
PACK = 8

#: constant carry inputs (nets are integers)
ZERO, ONE = ("const", 0), ("const", 1)


class _Bit:
    """A heap bit: net ``net`` (None for a constant), ``inv`` = used inverted."""
    __slots__ = ("net", "inv", "const", "depth")

    def __init__(self, net=None, inv=False, const=None, depth=0):
        self.net, self.inv, self.const, self.depth = net, inv, const, depth

    def raw(self):
        """Usable where there is no LUT to invert it (DI, carry-in)."""
        return self.const is not None or not self.inv


class Heap:
    """The LUT6_2 / CARRY4 netlist of one popcount or threshold.

    Nets are integers: ``0 .. n-1`` are the terms' bits; LUT and carry
    outputs are numbered after them. ``cells`` lists, in an order where every
    cell comes after the cells it reads, ``("lut", init, pins, o6, o5)``
    (``o5`` None when unused) and ``("carry4", ci, di, s, o, co)`` (``ci``
    the previous CARRY4's ``CO[3]`` net or None, the others 4-lists of nets
    or the constants :data:`ZERO` / :data:`ONE`, ``o``/``co`` entries None
    when unused).

    The heap adds ``V = sum_j 2^columns[j] * t_j`` over its terms, ``t_j``
    being term j's bit, or ``~bit`` where ``inverted[j]``; ``columns``
    defaults to all 0 (a popcount). ``threshold = T``: the output is the
    decision ``V + const >= T`` (``1 <= T - const <= max V``). Otherwise the
    output is ``(V + const) mod 2^width`` (``width`` defaults to the bits
    of the largest value).
    """

    def __init__(self, inverted, threshold=None, columns=None, const=0, width=None):
        self.inverted = [bool(i) for i in inverted]
        self.n = len(self.inverted)
        self.columns = [0] * self.n if columns is None else [int(c) for c in columns]
        self.threshold, self.const = threshold, int(const)
        if self.n < 1:
            raise ValueError("a heap needs at least one term")
        if len(self.columns) != self.n or min(self.columns) < 0:
            raise ValueError("columns must give a column >= 0 per term")
        self.vmax = sum(1 << c for c in self.columns)
        if threshold is not None and not 1 <= threshold - self.const <= self.vmax:
            raise ValueError(f"threshold {threshold - self.const} outside 1..{self.vmax}")
        if threshold is None:
            self.width = int(width) if width is not None else max((self.vmax + max(self.const, 0)).bit_length(), 1)
            if self.width < 1:
                raise ValueError("width must be >= 1")
        self.cells, self._nets, self._pending = [], self.n, []
        self.luts = self.carry4s = self.injectors = 0
        self._build()

    # -- netlist ----------------------------------------------------------------
    def _net(self):
        self._nets += 1
        return self._nets - 1

    @staticmethod
    def _pin(bit):
        """A carry input: a net or a constant."""
        if bit is None:
            return ZERO
        if bit.const is not None:
            return ONE if bit.const else ZERO
        assert not bit.inv
        return bit.net

    def _lut(self, operands, prev):
        """One column of a chain: ``(O6 bit, O5 bit or None)``."""
        pins, terms = [], []
        for bit in [*operands, prev]:
            if bit is None:
                continue
            if bit.const is not None:
                terms.append(("const", bit.const))
            else:
                terms.append(("pin", len(pins), bit.inv))
                pins.append(bit)
        assert len(pins) <= 5
        need_o5 = len(operands) >= 2      # maj of fewer than 2 operands is 0
        n_ops = len(terms) - (prev is not None)    # prev comes last in terms
        init = 0
        for i in range(32):
            vals = [c[1] if c[0] == "const" else ((i >> c[1]) & 1) ^ c[2] for c in terms]
            if sum(vals) & 1:
                init |= 1 << (32 + i)            # O6 (I5 = 1): the parity of operands and prev
            if need_o5 and sum(vals[:n_ops]) >= 2:
                init |= 1 << i                   # O5: the majority of the operands
        depth = 1 + max([b.depth for b in pins], default=0)
        o6, o5 = self._net(), self._net() if need_o5 else None
        self.cells.append(("lut", init, [b.net for b in pins], o6, o5))
        self.luts += 1
        return _Bit(o6, depth=depth), (_Bit(o5, depth=depth) if need_o5 else None)

    def _chain(self, cols, d=None, e=None):
        """Carry-chain ternary adder over ``cols`` (lists of <= 3 bits, from
        the lowest column up), raw bit ``d`` at the first column and carry-in
        ``e``: ``(sum bits, bits one column above the last)``."""
        prev, s, di = d, [], []
        for ops in cols:
            o6, o5 = self._lut(ops, prev)
            s.append(o6)
            di.append(self._pin(prev))
            prev = o5
        # positions: [S, DI, O net, CO net]; the injector's O is unused
        positions = [[ZERO, self._pin(e), None, self._net()]]
        self.injectors += 1
        positions += [[b.net, x, self._net(), None] for b, x in zip(s, di)]
        positions[-1][3] = self._net()
        depth = max([b.depth for b in s] + [b.depth for b in (d, e) if b is not None and b.const is None])
        sums = [_Bit(p[2], depth=depth) for p in positions[1:]]
        top = [_Bit(positions[-1][3], depth=depth)] + ([prev] if prev is not None else [])
        self._pending.extend(positions)
        if len(self._pending) >= 4 * PACK:
            self._flush()
        return sums, top

    def _flush(self):
        """The pending positions as one chain of CARRY4s."""
        ci = None
        for k in range(0, len(self._pending), 4):
            block = self._pending[k:k + 4]
            block += [[ZERO, ZERO, None, None]] * (4 - len(block))
            co = [p[3] for p in block]
            if co[3] is None:
                co[3] = self._net()   # the next block's carry-in
            self.cells.append(("carry4", ci, [p[1] for p in block], [p[0] for p in block],
                               [p[2] for p in block], co))
            self.carry4s += 1
            ci = co[3]
        self._pending = []

    # -- reduction --------------------------------------------------------------
    @staticmethod
    def _take_operands(bits):
        """Three operand bits, those that cannot be used raw first."""
        bits.sort(key=lambda b: (b.raw(), b.depth))
        ops = bits[:3]
        del bits[:3]
        return ops

    @staticmethod
    def _take_raw(bits):
        for i, b in enumerate(bits):
            if b.raw():
                return bits.pop(i)
        return None

    def _stage(self, heap):
        """One greedy reduction stage: chains grow upwards while a column has
        three bits left, new chains start while three remain."""
        new, open_chains = defaultdict(list), []
        col, top = min(heap), max(heap)

        def close(chain):
            sums, above = self._chain(chain["cols"], chain["d"], chain["e"])
            for j, b in enumerate(sums):
                new[chain["lo"] + j].append(b)
            new[chain["lo"] + len(chain["cols"])].extend(above)

        while col <= top or open_chains:
            bits = list(heap.get(col, []))
            still = []
            for chain in open_chains:
                if len(bits) >= 3:
                    chain["cols"].append(self._take_operands(bits))
                    still.append(chain)
                else:
                    close(chain)
            above = len(heap.get(col + 1, []))
            while len(bits) >= 3:
                if len(bits) == 3 and above < 3:
                    break      # three bits in, three out: no gain
                ops = self._take_operands(bits)
                d = self._take_raw(bits)
                e = self._take_raw(bits)
                still.append({"lo": col, "cols": [ops], "d": d, "e": e})
                above -= 3
            new[col].extend(bits)
            open_chains = still
            col += 1
        self._flush()
        return {c: v for c, v in new.items() if v}

    def _full_adders(self, heap):
        """A stage of 3:2 counters, one LUT6_2 each (``O6`` = sum, ``O5`` =
        carry), on every column with three bits or more: the fallback where
        no chain gains (too few bits may enter a carry chain raw)."""
        new = defaultdict(list)
        for col in sorted(heap):
            bits = list(heap[col])
            while len(bits) >= 3:
                s, c = self._lut(self._take_operands(bits), None)
                new[col].append(s)
                new[col + 1].append(c)
            new[col].extend(bits)
        return dict(new)

    @staticmethod
    def _final(heap):
        """Whether one chain can add the heap up: at most three bits per
        column, up to two more (raw) in the lowest."""
        lo = min(heap)
        return all(len(v) <= 3 + (min(2, sum(b.raw() for b in v)) if c == lo else 0) for c, v in heap.items())

    def _build(self):
        heap = defaultdict(list)
        for j, (inv, col) in enumerate(zip(self.inverted, self.columns)):
            heap[col].append(_Bit(j, inv))
        if self.threshold is None:
            top = self.width - 1              # the sum's top bit
            add = self.const % (1 << self.width)
        else:
            t, top = self.threshold - self.const, 0
            while (1 << top) <= self.vmax - t or (1 << top) < t:
                top += 1
            add = (1 << top) - t              # V + 2^M - t >= 2^M iff V >= t: the answer is bit M
        for c in range(top + 1):
            if (add >> c) & 1:
                heap[c].append(_Bit(const=1))
        # The total is below 2^(top+1) (for a threshold), or wanted modulo
        # 2^(top+1): a bit above column `top` does not change the outputs.
        heap = {c: v for c, v in heap.items() if c <= top}
        if not heap:                          # every term above the output's width: constant 0
            self.outputs, self.depth = [None] * (top + 1), 0
            return
        while not self._final(heap):
            before, state = sum(map(len, heap.values())), (len(self.cells), self._nets, self.luts,
                                                          self.carry4s, self.injectors)
            reduced = self._stage(heap)
            if sum(map(len, reduced.values())) >= before:   # no chain gained: undo, use counters
                del self.cells[state[0]:]
                self._nets, self.luts, self.carry4s, self.injectors = state[1:]
                reduced = self._full_adders(heap)
            heap = {c: v for c, v in reduced.items() if c <= top}
        lo = min(heap)
        cols, d, e = [], None, None
        for c in range(lo, top + 1):
            bits = list(heap.get(c, []))
            if c == lo and len(bits) > 3:
                d = self._take_raw(bits)
                if len(bits) > 3:
                    e = self._take_raw(bits)
            cols.append(bits)
        sums, _ = self._chain(cols, d, e)   # the bits above `top` are 0: the total fits
        self._flush()
        if self.threshold is None:
            self.outputs = [None] * lo + [b.net for b in sums]   # None: constant 0
        else:
            self.outputs = [sums[top - lo].net]
        self.depth = max(b.depth for b in sums)

    # -- use ------------------------------------------------------------------------
    def evaluate(self, x):
        """Outputs for input bits ``x`` (bool ``[vectors, n]``): the count
        (int) or the threshold's decision (bool) per vector: the netlist run
        in Python, cell by cell, with the semantics of Yosys's models."""
        x = np.asarray(x, dtype=bool)
        nets = {j: x[:, j] for j in range(self.n)}
        if self.outputs == [None] * len(self.outputs):
            return np.zeros(len(x), dtype=np.int64)
        consts = {ZERO: np.zeros(len(x), dtype=bool), ONE: np.ones(len(x), dtype=bool)}

        def value(v):
            return consts[v] if v in consts else nets[v]

        for cell in self.cells:
            if cell[0] == "lut":
                _, init, pins, o6, o5 = cell
                table = np.array([(init >> i) & 1 for i in range(64)], dtype=bool)
                index = np.zeros(len(x), dtype=np.int64)
                for i, p in enumerate(pins):
                    index |= nets[p].astype(np.int64) << i
                nets[o6] = table[32 + index]          # I5 = 1
                if o5 is not None:
                    nets[o5] = table[index]
            else:                                     # CO = S ? carry : DI; O = S ^ carry
                _, ci, di, s, o, co = cell
                carry = value(ZERO if ci is None else ci)
                for q in range(4):
                    if o[q] is not None:
                        nets[o[q]] = value(s[q]) ^ carry
                    carry = np.where(value(s[q]), carry, value(di[q]))
                    if co[q] is not None:
                        nets[co[q]] = carry
        if self.threshold is not None:
            return nets[self.outputs[0]]
        return sum((nets[b].astype(np.int64) << k for k, b in enumerate(self.outputs) if b is not None),
                   np.zeros(len(x), dtype=np.int64))

    def emit(self, m, bits, name):
        """Instantiate the netlist in module ``m`` on the terms' ``bits``
        (1-bit Amaranth values; ``inverted`` is applied inside the LUTs).
        Returns the count as an unsigned value, or the decision bit."""
        nets = dict(enumerate(bits))

        def wire(net, suffix):
            sig = Signal(name=f"{name}_{suffix}{net}")
            nets[net] = sig
            return sig

        def carry_in(v):
            return Const(v[1], 1) if v in (ZERO, ONE) else nets[v]

        for k, cell in enumerate(self.cells):
            if cell[0] == "lut":
                _, init, pins, o6, o5 = cell
                ports = {f"i_I{i}": nets[p] for i, p in enumerate(pins)}
                ports.update({f"i_I{i}": Const(0, 1) for i in range(len(pins), 5)})
                ports["o_O6"] = wire(o6, "o6_")
                if o5 is not None:
                    ports["o_O5"] = wire(o5, "o5_")
                m.submodules[f"{name}_lut{k}"] = Instance("LUT6_2", p_INIT=Const(init, 64), i_I5=Const(1, 1),
                                                          **ports)
            else:
                _, ci, di, s, o, co = cell
                o_bus, co_bus = Signal(4, name=f"{name}_o{k}"), Signal(4, name=f"{name}_co{k}")
                for q in range(4):
                    if o[q] is not None:
                        nets[o[q]] = o_bus[q]
                    if co[q] is not None:
                        nets[co[q]] = co_bus[q]
                m.submodules[f"{name}_carry{k}"] = Instance(
                    "CARRY4", i_CI=nets[ci] if ci is not None else Const(0, 1), i_CYINIT=Const(0, 1),
                    i_DI=Cat(carry_in(v) for v in di), i_S=Cat(carry_in(v) for v in s), o_O=o_bus, o_CO=co_bus)
        if self.threshold is not None:
            return nets[self.outputs[0]]
        return Cat(Const(0, 1) if b is None else nets[b] for b in self.outputs)   # unsigned, width bits

