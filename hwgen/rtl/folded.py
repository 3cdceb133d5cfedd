"""Folded, bit-aware layers: PE neurons x SIMD inputs per cycle, weights in
ROM per bit-plane, valid/ready streams (FINN's MVAU, made bit-aware).

A layer of ``O`` neurons over ``I`` inputs is cut into *tiles* of PE
neurons x SIMD inputs (``PE | O``, ``SIMD | I``). Neuron fold ``f`` takes
PE neurons, ``f*PE .. f*PE+PE-1`` of the layer's neurons in an order that
puts equal bit counts together (:func:`fold_order`; the outputs are wired
back in place); input group ``g`` takes inputs ``g*SIMD .. g*SIMD+SIMD-1``.
The schedule visits, for each fold, each group and each bit-plane ``b`` the
tile *has* (``b <`` the largest bit count in the tile): one ROM word, one
cycle. A tile of 1-bit weights costs one cycle, a tile of 3-bit weights
three, so cycles and weight-memory bits follow the average bits when the bit
counts are chosen per tile (``hwgen train --mask-group PExSIMD``) or per
neuron (``--mask-group neuron``: the order then makes all tiles uniform but
those that straddle two bit classes); with per-weight bit counts a tile
costs its maximum, and the ROM then also holds a mask bit per weight.

Per cycle and PE: ``part = 2*popcount(XNOR(s, a) AND m)`` (binary inputs) or
``sum(m*s*x)`` (unsigned inputs), ``acc += alpha[o, b] * part``. The
constant ``-sum_b alpha_b |m_b|`` of the binary form is folded into the
threshold (or the score's bias) at generation time, so at the end of a fold
``Y[o] = acc + const[o]`` is compared with the threshold, or output as a
score. All arithmetic is integer and exact; widths follow exact bounds.

Pipeline per layer: issue (ROM address) -> S1 (ROM word; select the input
group; partial sums) -> S2 (multiply by alpha, accumulate) -> S3 (compare or
add bias) -> S4 (collect the fold's outputs). ``pipeline = k > 0`` also
registers the partial sums' adder trees every k levels (their depth grows
with log2 SIMD), adding those registers to the latency; ``pipeline = 1``
also makes the multiply by alpha a shift-add tree registered at every
level (one two-operand adder per clock, ``ceil(log2 A)`` clocks for A-bit
scales) before the accumulator.
A layer accepts its next input one cycle after it has issued the last word
of the current one, so a layer takes ``cycles + 1`` clocks per inference,
and a network of layers streams at the rate of its slowest layer. With
``held_input`` the layer has no input register: it reads the payload its
upstream holds (a stream's payload may not change until it is taken),
issues words from the first clock the input is offered and takes it as its
last word reads its input group, still ``cycles + 1`` clocks apart when the
next input is offered at once.
"""
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Cat, Const, EnableInserter, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..errors import HwgenError
from . import handshake
from .arith import KEEP, Adders, Staged, delayed, width_for
from .layer import score_shape

__all__ = ["FoldedLayer", "Schedule", "candidates", "choose_folding", "conv_interval", "conv_windows",
           "estimate_cycles", "estimate_luts", "fold_order", "lut_features", "schedule"]


@dataclass
class Schedule:
    """The ROM program of one folded layer (see the module docstring).

    ``entries``: list of ``(fold, group, plane, signs, masks)``, ``signs``
    and ``masks`` uint8 ``[PE, SIMD]``; ``plane == max_bits`` marks the
    filler word of a fold that has no weights (its alpha is 0). ``order``:
    the neuron each fold's lanes compute, fold ``f``'s PE ``p`` computing
    neuron ``order[f*PE + p]`` (:func:`fold_order`). ``needs_mask``: some
    tile row mixes bit counts, so the ROM holds a mask bit per weight;
    else ``row_enables``: some tile has rows of different counts, each of
    one count, so the ROM holds one bit per PE and word (the lane's part
    counts, or is 0).
    """
    pe: int
    simd: int
    folds: int
    groups: int
    max_bits: int
    entries: list
    needs_mask: bool
    weight_bits: int
    order: np.ndarray
    row_enables: bool

    @property
    def cycles(self):
        """ROM words = cycles of the datapath per inference."""
        return len(self.entries)

    @property
    def min_cycles(self):
        """Analytic minimum: every weight bit through one of PE x SIMD lanes."""
        return -(-self.weight_bits // (self.pe * self.simd))

    @property
    def weight_memory_bits(self):
        """Sign bits, and mask bits or row enables where the tiles are not
        uniform, in ROM."""
        rows = self.cycles * self.pe if self.row_enables else 0
        return self.cycles * self.pe * self.simd * (2 if self.needs_mask else 1) + rows

    @property
    def reordered(self):
        """Whether the folds take the neurons out of their order."""
        return bool((self.order != np.arange(len(self.order))).any())


def _check_folding(layer, pe, simd):
    o, i = layer.out_features, layer.in_features
    if pe < 1 or o % pe:
        raise HwgenError(f"layer {layer.name}: PE = {pe} must divide its {o} neurons "
                         f"(divisors: {_divisors(o)})")
    if simd < 1 or i % simd:
        raise HwgenError(f"layer {layer.name}: SIMD = {simd} must divide its {i} inputs "
                         f"(divisors: {_divisors(i)})")


def _profile(layer, simd):
    """int ``[O, groups]``: each neuron's largest bit count in each input group."""
    o, i = layer.out_features, layer.in_features
    return layer.nbits.astype(np.int64).reshape(o, i // simd, simd).max(axis=2)


def _tiles(profile, pe, order):
    """int ``[folds, groups]``: each tile's largest bit count with the
    neurons folded in ``order``."""
    return profile[order].reshape(len(order) // pe, pe, -1).max(axis=1)


def _fold_cycles(tiles):
    """Cycles of folds with these tiles (a fold without weights takes one)."""
    return int(np.maximum(tiles.sum(axis=1), 1).sum())


def fold_order(layer, pe, simd):
    """The neurons in the order the folds take them: a tile costs its
    largest bit count in cycles, so neurons with equal bit counts should
    share a fold. Neuron order costs nothing in hardware (the outputs are
    wired back in place), so the order with the fewest cycles among the
    layer's own, the neurons sorted by their total of per-group bit counts
    (then by those counts), and sorted by the counts alone wins; the
    layer's own order on a tie. Per-neuron bit counts (``--mask-group
    neuron``, or ``RxC`` blocks as wide as the layer) then fold to uniform
    tiles at any PE, but where a bit class's size is not a multiple of PE,
    whose boundary folds mix."""
    profile = _profile(layer, simd)
    columns = [profile[:, g] for g in reversed(range(profile.shape[1]))]   # np.lexsort: last key first
    orders = [np.arange(layer.out_features),
              np.lexsort(columns + [profile.sum(axis=1)]),
              np.lexsort(columns)]
    return min(orders, key=lambda order: _fold_cycles(_tiles(profile, pe, order)))


def schedule(layer, pe, simd):
    """The :class:`Schedule` of ``layer`` folded to ``pe`` x ``simd``."""
    _check_folding(layer, pe, simd)
    o, i = layer.out_features, layer.in_features
    order = fold_order(layer, pe, simd)
    nbits = layer.nbits.astype(np.int64)[order]
    planes, alpha_all = layer.planes[:, order], layer.alpha[order]
    entries, needs_mask, partial = [], False, False
    for f in range(o // pe):
        rows = slice(f * pe, (f + 1) * pe)
        alpha = alpha_all[rows]
        start = len(entries)
        for g in range(i // simd):
            tile = nbits[rows, g * simd:(g + 1) * simd]
            for b in range(int(tile.max(initial=0))):
                if not alpha[:, b].any():
                    continue    # contributes 0 to every neuron of the fold
                masks = (tile > b).astype(np.uint8)
                partial |= not masks.all()
                needs_mask |= bool((masks.min(axis=1) != masks.max(axis=1)).any())
                signs = planes[b, rows, g * simd:(g + 1) * simd].astype(np.uint8)
                entries.append((f, g, b, signs, masks))
        if len(entries) == start:   # nothing to add up: one filler word ends the fold
            zeros = np.zeros((pe, simd), np.uint8)
            entries.append((f, 0, layer.max_bits, zeros, zeros))
    return Schedule(pe, simd, o // pe, i // simd, layer.max_bits, entries, needs_mask,
                    int(nbits.sum()), order, partial and not needs_mask)


def _divisors(n):
    return ", ".join(str(d) for d in range(1, n + 1) if n % d == 0)


class FoldedLayer(wiring.Component):
    """One dense :class:`hwgen.core.artifact.Layer`, folded to ``pe`` x ``simd``;
    ``pipeline = k > 0`` registers the lanes' adder trees every k levels;
    ``family`` picks their popcount structures (:class:`~hwgen.rtl.arith.Adders`).
    (A folded conv layer, :class:`hwgen.rtl.conv.ConvLayer`, feeds one of
    these its windows: ``i`` is then one window in fan-in order.)

    Members
    -------
    i : ``In(stream.Signature(ArrayLayout(unsigned(input_bits), in_features)))``
    o : ``Out(stream.Signature(...))``, ``unsigned(out_features)`` for
        threshold layers (bit o = neuron o fires), ``ArrayLayout(score,
        out_features)`` for the scores layer.
    """

    def __init__(self, layer, pe, simd, pipeline=0, family="generic", held_input=False):
        if layer.op not in ("dense", "conv2d") or (layer.input == "binary" and layer.input_bits != 1):
            raise HwgenError(f"layer {layer.name}: the folded architecture takes dense and conv layers "
                             f"over unsigned or 1-bit binary inputs")
        self._layer, self._pipeline, self._stages, self.family = layer, int(pipeline), None, family
        self.held_input = bool(held_input)
        self.schedule = schedule(layer, pe, simd)
        if layer.output == "scores":
            y_shape = data.ArrayLayout(score_shape(layer), layer.out_features)
        else:
            y_shape = unsigned(layer.out_features)
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(unsigned(layer.input_bits), layer.in_features))),
            "o": Out(stream.Signature(y_shape)),
        })

    @property
    def layer(self):
        return self._layer

    #: folded layers are bit-plane hardware (one ROM word per plane)
    datapath_kind = "planes"

    @property
    def latency(self):
        """Cycles from an input offered to the idle layer to its valid
        output (no stalls); a held input starts one clock sooner (there is
        no input register to load)."""
        return self.schedule.cycles + 5 - self.held_input + self._registers()

    def _registers(self):
        """Registers a word passes beyond the unpipelined layer's: the lanes'
        adder-tree registers, and the multipliers'."""
        return self._lane_stages() + self._multiply_stages()

    def _alpha_width(self):
        return _alpha_width(self._layer)

    def _multiply_stages(self):
        """Registers in the multiply by alpha: with ``pipeline = 1``, one per
        level of its shift-add tree (:meth:`_multiply`)."""
        return max((self._alpha_width() - 1).bit_length(), 1) if self._pipeline == 1 else 0

    @staticmethod
    def _multiply(m, alpha, part, name):
        """``alpha * part`` as a balanced tree over the copies of ``part``
        that ``alpha``'s bits select, shifted to their weight, with a
        register after every level: each clock is one two-operand carry
        chain (the selection folds into its LUTs), as short as the
        accumulator's. The multiply's registered halves (two clocks) left
        half a multiplier's adder depth in one clock: the per-neuron demo
        reached 138-145 MHz on the ECP5 with them, 177-184 MHz with this
        tree, with 6 % fewer LUTs and 11 % more flip-flops (docs/flow.md)."""
        level = [(Mux(alpha[k], part, 0), k) for k in range(len(alpha))]
        depth = 0
        while depth == 0 or len(level) > 1:
            pairs = [level[j:j + 2] for j in range(0, len(level), 2)]
            level = []
            for j, pair in enumerate(pairs):
                (low, shift), rest = pair[0], pair[1:]
                value = low + (rest[0][0] << (rest[0][1] - shift)) if rest else low
                reg = Signal(value.shape(), name=f"{name}_{depth}_{j}")
                m.d.sync += reg.eq(value)
                level.append((reg, shift))
            depth += 1
        return level[0][0]

    def _shares_group_sum(self):
        """Pixel lanes without masks, several PEs: the PEs read the same input
        group, so its sum ``S`` is built once and each lane adds only its
        positive inputs ``P``: ``P - N = 2P - S``, one tree per lane instead
        of two. (One PE gains nothing; masked lanes sum different inputs.)"""
        sch = self.schedule
        return self._layer.input == "uint" and not sch.needs_mask and sch.pe > 1

    def _group_sum(self, m, xg):
        """The staged sum of input group ``xg`` (:meth:`_shares_group_sum`)."""
        bits = self._layer.input_bits
        adders = Adders(m, "group", self._pipeline, self.family)
        total, _ = adders.sum((Staged(xg[s * bits:(s + 1) * bits]), (1 << bits) - 1)
                              for s in range(self.schedule.simd))
        return total

    def _lane(self, m, p, xg, word, group_sum=None):
        """PE ``p``'s partial sum for the input group ``xg`` and schedule
        ``word``, staged (registers every ``pipeline`` adder levels);
        ``group_sum``: the group's staged sum, where lanes share it."""
        layer, sch, bits = self._layer, self.schedule, self._layer.input_bits
        adders = Adders(m, f"lane{p}", self._pipeline, self.family)
        lanes = range(p * sch.simd, (p + 1) * sch.simd)
        mask = [word.masks[k] if sch.needs_mask else Const(1, 1) for k in lanes]
        if layer.input == "binary":   # 2 * popcount(XNOR(s, a) AND m)
            count, _, _ = adders.popcount((~(xg[s] ^ word.signs[k]) & mask[s], False)
                                          for s, k in enumerate(lanes))
            return Staged(count.value * 2, count.stage, count.depth)
        top = (1 << bits) - 1          # sum(m * s * x): kept trees of both halves, one subtraction
        xs = [xg[s * bits:(s + 1) * bits] for s in range(sch.simd)]
        pos, _ = adders.sum((Staged(Mux(word.signs[k] & mask[s], xs[s], 0)), top) for s, k in enumerate(lanes))
        if group_sum is not None:
            return adders.node(lambda a, b: (a << 1) - b, [pos, group_sum])
        neg, _ = adders.sum((Staged(Mux(~word.signs[k] & mask[s], xs[s], 0)), top) for s, k in enumerate(lanes))
        return adders.node(lambda a, b: a - b, [pos, neg])

    def _lane_stages(self):
        """Registers inside a lane's adder trees (the same in every lane):
        built once, aside, on stand-in signals."""
        if self._stages is None:
            scratch = Module()
            scratch._MustUse__silence = True
            word = Signal(self._word_layout())
            xg = Signal(self.schedule.simd * self._layer.input_bits)
            total = self._group_sum(scratch, xg) if self._shares_group_sum() else None
            self._stages = self._lane(scratch, 0, xg, word, total).stage
        return self._stages

    @property
    def interval(self):
        """Cycles per inference when the layer streams on its own."""
        return self.schedule.cycles + 1

    def control(self):
        """The layer's handshakes, cycle for cycle (:mod:`hwgen.rtl.handshake`)."""
        return handshake.folded(self.schedule, self._registers(), self.held_input)

    def _word_layout(self):
        sch = self.schedule
        lanes = sch.pe * sch.simd
        return data.StructLayout({
            "signs": unsigned(lanes), "masks": unsigned(lanes if sch.needs_mask else 0),
            "rows": unsigned(sch.pe if sch.row_enables else 0),
            "group": unsigned(max((sch.groups - 1).bit_length(), 1)),
            "plane": unsigned(max(sch.max_bits.bit_length(), 1)),      # planes 0..max_bits (filler)
            "fold": unsigned(max((sch.folds - 1).bit_length(), 1)),
            "first": unsigned(1), "last": unsigned(1)})

    def _constants(self):
        """Per neuron: what the datapath leaves out of ``Y`` (``const``), and
        the exact range of the accumulator over every input."""
        layer = self._layer
        b = np.arange(layer.max_bits).reshape(-1, 1, 1)
        m = (layer.nbits[None].astype(np.int64) > b)                     # [B, O, I]
        terms = layer.alpha.T[:, :, None] * m                               # alpha_b m_bj >= 0
        if layer.input == "binary":
            const = -terms.sum(axis=(0, 2))
            lo, hi = np.zeros(layer.out_features, np.int64), 2 * terms.sum(axis=(0, 2))
        else:
            top = (1 << layer.input_bits) - 1
            pos = layer.planes.astype(bool)
            const = np.zeros(layer.out_features, np.int64)
            hi, lo = (terms * pos).sum(axis=(0, 2)) * top, -(terms * ~pos).sum(axis=(0, 2)) * top
        if layer.output == "scores":
            const = const + layer.bias
        return const, lo, hi

    def elaborate(self, platform):
        """The three ROMs, then the pipeline issue -> S1 -> S2 -> S3 -> S4."""
        m = Module()
        const, acc_lo, acc_hi = self._constants()
        acc_w, _ = width_for(min(int(acc_lo.min()), 0), int(acc_hi.max()))
        weights = self._schedule_rom(m)
        alpha_rom = self._alpha_rom(m)
        end_rom, c_w = self._end_rom(m, const)

        run = Signal()          # the whole layer advances (only a full output stops it)
        x, w1, v1 = self._issue(m, run, weights)
        parts, depth = self._partial_sums(m, run, x, w1)
        ctl2, v2, ra = self._alpha_read(m, run, w1, v1, depth, alpha_rom)
        accs, v3, fold3, finishing3, re = self._accumulate(m, run, parts, ra, ctl2, v2, end_rom,
                                                           signed(acc_w + 1))
        outs, v4, fold4, finishing = self._fold_outputs(m, run, accs, re, c_w, v3, fold3, finishing3)
        self._collect(m, run, outs, v4, fold4, finishing, finishing3)
        return m

    def _control_layout(self):
        """The part of a schedule word that travels on past S1: plane, fold,
        first and last."""
        word = self._word_layout()
        plane_w, fold_w = word.members["plane"].width, word.members["fold"].width
        return data.StructLayout({"plane": unsigned(plane_w), "fold": unsigned(fold_w), "first": 1, "last": 1})

    def _schedule_rom(self, m):
        """ROM 1, ``weights``: the schedule, one word per cycle."""
        sch = self.schedule
        word = self._word_layout()
        init = []
        for k, (f, g, b, signs, masks) in enumerate(sch.entries):
            first = k == 0 or sch.entries[k - 1][0] != f
            last = k + 1 == len(sch.entries) or sch.entries[k + 1][0] != f
            init.append({"signs": _pack_bits(signs), "masks": _pack_bits(masks) if sch.needs_mask else 0,
                         "rows": _pack_bits(masks[:, 0]) if sch.row_enables else 0,
                         "group": g, "plane": b, "fold": f, "first": first, "last": last})
        m.submodules.weights = weights = Memory(shape=word, depth=len(init), init=init)
        return weights

    def _alpha_rom(self, m):
        """ROM 2, ``alphas``: alpha per (fold, plane), PE lanes; the filler
        plane reads 0."""
        layer, sch = self._layer, self.schedule
        pe, order, a_w = sch.pe, sch.order, self._alpha_width()
        planes = 1 << self._word_layout().members["plane"].width
        alphas = []
        for f in range(sch.folds):
            for b in range(planes):
                lanes = [int(layer.alpha[order[f * pe + p], b]) if b < layer.max_bits else 0 for p in range(pe)]
                alphas.append(_pack_ints(lanes, a_w))
        m.submodules.alphas = alpha_rom = Memory(shape=unsigned(a_w * pe), depth=len(alphas), init=alphas)
        return alpha_rom

    def _end_rom(self, m, const):
        """ROM 3, ``ends``: per fold, the threshold (minus ``const``) and
        direction, or the score offset; and the width of its signed fields
        less one."""
        layer, sch = self._layer, self.schedule
        pe, order = sch.pe, sch.order
        if layer.output == "scores":
            c_w, _ = width_for(min(int(const.min()), 0), max(int(const.max()), 0))
            ends = [_pack_ints([int(const[order[f * pe + p]]) for p in range(pe)], c_w + 1) for f in range(sch.folds)]
            end_w = (c_w + 1) * pe
        else:
            # y >= t fires an up neuron, y <= t a down one: y - t >= 0 and
            # y - (t + 1) < 0, so S3 needs only the sign of y - t' (t' = t + 1
            # for down neurons), one carry chain and an XOR
            t = layer.threshold.astype(np.int64) - const + (layer.direction <= 0)
            c_w, _ = width_for(min(int(t.min()), 0), max(int(t.max()), 0))
            ends = [_pack_ints([int(t[order[f * pe + p]]) for p in range(pe)], c_w + 1)
                    | (_pack_ints([int(layer.direction[order[f * pe + p]] > 0) for p in range(pe)], 1)
                       << ((c_w + 1) * pe)) for f in range(sch.folds)]
            end_w = (c_w + 2) * pe
        m.submodules.ends = end_rom = Memory(shape=unsigned(end_w), depth=sch.folds, init=ends)
        return end_rom, c_w

    def _issue(self, m, run, weights):
        """Issue: the input taken (into a register, or held upstream) and the
        schedule's ROM addresses; the input, the word read (S1) and its valid."""
        busy = Signal()
        addr = Signal(range(max(len(self.schedule.entries), 2)))
        rd = weights.read_port()
        v1 = Signal()
        m.d.comb += [rd.addr.eq(addr), rd.en.eq(run)]
        if self.held_input:
            x = self._issue_held(m, run, busy, addr, v1)
        else:
            x = self._issue_registered(m, run, busy, addr, v1)
        return x, rd.data, v1

    def _issue_held(self, m, run, busy, addr, v1):
        """Issue without an input register: the upstream's held payload."""
        # The upstream holds its payload until the transfer (valid and not
        # ready: it may not change), so the words are issued from the first
        # clock the input is offered, and the transfer is made as the last
        # word reads its input group (S1). addr rests at 0 between inputs.
        end = len(self.schedule.entries) - 1
        last1 = Signal()     # the word at S1 is the schedule's last
        issue = Signal()
        m.d.comb += [issue.eq(busy | (self.i.valid & ~last1)), self.i.ready.eq(run & last1)]
        with m.If(run):
            m.d.sync += [v1.eq(issue), last1.eq(issue & (addr == end))]
            with m.If(issue):
                m.d.sync += [addr.eq(addr + 1), busy.eq(1)]
                with m.If(addr == end):
                    m.d.sync += [addr.eq(0), busy.eq(0)]
        return self.i.payload

    def _issue_registered(self, m, run, busy, addr, v1):
        """Issue from the input register ``x``, loaded when the layer is idle."""
        x = Signal(self.i.payload.shape())
        m.d.comb += self.i.ready.eq(run & ~busy)
        with m.If(run):
            m.d.sync += v1.eq(busy)
            with m.If(self.i.valid & ~busy):
                m.d.sync += [x.eq(self.i.payload), busy.eq(1), addr.eq(0)]
            with m.Elif(busy):
                m.d.sync += addr.eq(addr + 1)
                with m.If(addr == len(self.schedule.entries) - 1):
                    m.d.sync += busy.eq(0)
        return x

    def _partial_sums(self, m, run, x, w1):
        """S1: the input group of word ``w1`` and the PE partial sums (kept
        adder trees, their pipeline registers stalled with the layer),
        registered; and the trees' register depth."""
        sch, bits = self.schedule, self._layer.input_bits
        xg = Signal(sch.simd * bits)
        m.d.comb += xg.eq(x.as_value().word_select(w1.group, sch.simd * bits))
        lanes = Module()
        m.submodules.lanes = EnableInserter(run)(lanes)
        depth, parts = self._lane_stages(), []
        total = self._group_sum(lanes, xg) if self._shares_group_sum() else None
        # row enables: a lane whose neuron lacks the word's plane (in this
        # input group) adds 0
        rows = delayed(m, run, w1.rows, depth, "row_enables") if sch.row_enables else None
        for p in range(sch.pe):
            part = self._lane(lanes, p, xg, w1, total)
            assert part.stage == depth   # every lane has the same trees
            reg = Signal(part.value.shape(), name=f"part{p}")
            parts.append(reg)
            with m.If(run):
                m.d.sync += reg.eq(part.value if rows is None else Mux(rows[p], part.value, 0))
        return parts, depth

    def _alpha_read(self, m, run, w1, v1, depth, alpha_rom):
        """S1 -> S2: word ``w1``'s control (not its weights), delayed alongside
        the trees' registers, addresses the alpha ROM and is registered."""
        control = self._control_layout()
        ctl1 = data.View(control, delayed(m, run, Cat(w1.plane, w1.fold, w1.first, w1.last), depth, "control"))
        v1 = delayed(m, run, v1, depth, "control_valid")
        ctl2 = Signal(control)
        v2 = Signal()
        ra = alpha_rom.read_port()
        m.d.comb += [ra.addr.eq(Cat(ctl1.plane, ctl1.fold)), ra.en.eq(run)]
        with m.If(run):
            m.d.sync += [v2.eq(v1), ctl2.eq(ctl1)]
        return ctl2, v2, ra

    def _accumulate(self, m, run, parts, ra, ctl2, v2, end_rom, acc_shape):
        """S2: multiply the parts by alpha and accumulate; the fold's end
        ROM read."""
        # With pipeline = 1 the multiply is a registered shift-add tree
        # (_multiply): multiply-accumulate in one clock was the critical path
        # (120 MHz on ECP5), but Yosys merges it into one cheaper $macc, so
        # coarser pipelining keeps it
        sch, a_w = self.schedule, self._alpha_width()
        pe, fold_w = sch.pe, self._control_layout().members["fold"].width
        if self._pipeline == 1:
            multiply = Module()
            m.submodules.multiply = EnableInserter(run)(multiply)
            products = [self._multiply(multiply, ra.data[p * a_w:(p + 1) * a_w], parts[p], f"product{p}")
                        for p in range(pe)]
            ctl2 = data.View(self._control_layout(),
                             delayed(m, run, ctl2.as_value(), self._multiply_stages(), "product_control"))
            v2 = delayed(m, run, v2, self._multiply_stages(), "product_valid")
        else:
            products = [ra.data[p * a_w:(p + 1) * a_w] * parts[p] for p in range(pe)]
        accs = [Signal(acc_shape, name=f"acc{p}") for p in range(pe)]
        v3, fold3, finishing3 = Signal(), Signal(fold_w), Signal()
        re = end_rom.read_port()
        m.d.comb += [re.addr.eq(ctl2.fold), re.en.eq(run)]
        with m.If(run):
            m.d.sync += [v3.eq(v2 & ctl2.last), fold3.eq(ctl2.fold),
                         finishing3.eq(v2 & ctl2.last & (ctl2.fold == sch.folds - 1))]
            with m.If(v2):
                for p in range(pe):
                    m.d.sync += accs[p].eq(Mux(ctl2.first, 0, accs[p]) + products[p])
        return accs, v3, fold3, finishing3, re

    def _fold_outputs(self, m, run, accs, re, c_w, v3, fold3, finishing3):
        """S3: the fold's outputs (compare, or add the offset), registered,
        with their valid, fold and finishing flags."""
        layer, pe = self._layer, self.schedule.pe
        outs = []
        for p in range(pe):
            c = re.data[p * (c_w + 1):(p + 1) * (c_w + 1)].as_signed()
            if layer.output == "scores":
                out = (accs[p] + c)[:self.o.payload[0].shape().width]
            else:
                up = re.data[(c_w + 1) * pe + p]
                out = (accs[p] - c)[-1] ^ up
            reg = Signal(len(out), name=f"out{p}")
            with m.If(run):
                m.d.sync += reg.eq(out)
            outs.append(reg)
        v4, fold4, finishing = Signal(), Signal(len(fold3)), Signal()
        with m.If(run):
            m.d.sync += [v4.eq(v3), fold4.eq(fold3), finishing.eq(finishing3)]
        with m.Elif(self.o.ready):      # stopped: the waiting result goes out (S4)
            m.d.sync += [v4.eq(0), finishing.eq(0)]
        return outs, v4, fold4, finishing

    def _collect(self, m, run, outs, v4, fold4, finishing, finishing3):
        """S4: collect the fold's outputs; the last fold completes the output
        word (neurons wired back in place); ``run`` and the output stream."""
        sch = self.schedule
        pe, order = sch.pe, sch.order
        lane_w = len(outs[0])
        result = Signal(self._layer.out_features * lane_w)
        # A full output register stops the layer when the last fold's result
        # arrives (finishing): run = ~(finishing & o.valid). o.ready is left
        # out of run, so no combinational path runs from a layer's downstream
        # to its every register, and run comes straight from a register
        # holding next clock's value of that product: run drives every
        # register's enable. A kept copy of the register computes it, away
        # from that fanout. o.ready reaches only the output register and S4:
        # the waiting result goes out in the clock the held one is taken,
        # and the layer runs on from the next.
        stop, stop_copy = Signal(), Signal(attrs=KEEP)
        finishing_next = Mux(stop_copy, finishing & ~self.o.ready, finishing3)
        valid_next = Mux(~stop_copy & finishing, 1, self.o.valid & ~self.o.ready)
        m.d.sync += [stop.eq(finishing_next & valid_next), stop_copy.eq(finishing_next & valid_next)]
        m.d.comb += run.eq(~stop)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(run & v4):
            with m.Switch(fold4):
                for f in range(sch.folds):
                    with m.Case(f):
                        m.d.sync += result[f * pe * lane_w:(f + 1) * pe * lane_w].eq(Cat(*outs))
        with m.If(v4 & finishing & (run | self.o.ready)):    # the neurons wired back in place
            slots = [result[k * lane_w:(k + 1) * lane_w] for k in range((sch.folds - 1) * pe)] + outs
            place = np.argsort(order)
            m.d.sync += [self.o.payload.eq(Cat(*(slots[k] for k in place))), self.o.valid.eq(1)]


def _alpha_width(layer):
    """Bits of the alpha ROM's field per lane: the largest scale's."""
    return max(int(layer.alpha.max(initial=0)).bit_length(), 1)


def _pack_bits(bits):
    """uint8 ``[PE, SIMD]`` -> int, lane ``p*SIMD + s`` at bit ``p*SIMD + s``."""
    return sum(int(v) << k for k, v in enumerate(np.asarray(bits).reshape(-1)))


def _pack_ints(values, width):
    """Two's complement ``width``-bit fields, first value lowest."""
    mask = (1 << width) - 1
    return sum((int(v) & mask) << (k * width) for k, v in enumerate(values))


def estimate_cycles(layer, pe, simd):
    """Cycles of ``layer`` folded to ``pe`` x ``simd`` from the tiles' bit
    counts alone (an upper bound of :attr:`Schedule.cycles`, which also skips
    planes whose scales are all 0)."""
    return _fold_cycles(_tiles(_profile(layer, simd), pe, fold_order(layer, pe, simd)))


#: iCE40 LUT4 per unit of each :func:`lut_features` entry: a non-negative
#: least-squares fit of the relative error to 27 synthesized folded layers
#: of three digits MLPs (bench/fold_estimate.py --scales 4 8 16,
#: 2026-11-24, refitted with shared_lanes): mean error 12 %, at most 30 %
#: (in the fit; an earlier fit erred 22 % on a network left out of it).
#: Only a guide: hwgen.explore.budget rescales it per layer by a measurement and
#: measures what it picks.
LUT4_PER_FEATURE = {"base": 63.1, "lanes": 2.01, "shared_lanes": 2.19, "multiply": 0.64, "accumulate": 0.0,
                    "group_mux": 1.35, "rom_in_luts": 0.062, "outputs": 3.44}


def _folded_bits(layer, pe, simd):
    """int ``[folds, PE, groups, SIMD]``: the bit counts in fold order."""
    o, i = layer.out_features, layer.in_features
    return layer.nbits.astype(np.int64)[fold_order(layer, pe, simd)].reshape(o // pe, pe, i // simd, simd)


def _rows_mix(nbits):
    """Whether a tile row of :func:`_folded_bits` mixes bit counts (the ROM
    then holds a mask per weight)."""
    return bool((nbits.max(axis=3) != nbits.min(axis=3)).any())


def _masked(layer, pe, simd):
    return _rows_mix(_folded_bits(layer, pe, simd))


def lut_features(layer, pe, simd):
    """What a folded layer's LUT count grows with: lane inputs (masked
    lanes count twice), pixel lanes without masks apart (they share their
    group's sum, so PE of them are PE + 1 trees), the alpha multipliers'
    partial products, the accumulators' bits, the input-group multiplexer,
    small ROMs mapped to LUTs, the collected outputs. (A lane's row enable
    is not a feature of its own: it gates the lane's registered part.)"""
    o, i, bits = layer.out_features, layer.in_features, layer.input_bits
    nbits = _folded_bits(layer, pe, simd)
    mask = _rows_mix(nbits)
    row_enables = not mask and bool((nbits.max(axis=(1, 3)) != nbits.min(axis=(1, 3))).any())
    cycles = estimate_cycles(layer, pe, simd)
    if layer.input == "binary":
        part_w = (2 * simd).bit_length()
    else:
        part_w = (simd * ((1 << bits) - 1)).bit_length() + 1
    a_w = _alpha_width(layer)
    lo, hi = layer.bounds()
    acc_w = max(width_for(int(l), int(h))[0] for l, h in zip(lo, hi)) + 1
    rom_bits = cycles * pe * (simd * (2 if mask else 1) + row_enables)
    shared = layer.input == "uint" and not mask and pe > 1
    lanes = 0 if shared else pe * simd * (bits if layer.input == "uint" else 1) * (2 if mask else 1)
    return {"base": 1, "lanes": lanes, "shared_lanes": (pe + 1) * simd * bits if shared else 0,
            "multiply": pe * a_w * part_w, "accumulate": pe * acc_w,
            "group_mux": simd * bits * (i // simd - 1),
            "rom_in_luts": rom_bits if cycles <= ROM_IN_LUTS_UP_TO else 0, "outputs": o}


#: Yosys maps a weight ROM this deep or shallower to LUTs, a deeper one to
#: block RAM (iCE40: 121 words went to LUTs, 254 to SB_RAM40_4K)
ROM_IN_LUTS_UP_TO = 128


def estimate_luts(layer, pe, simd):
    """Estimated iCE40 LUT4 of ``layer`` folded to ``pe`` x ``simd``."""
    return sum(LUT4_PER_FEATURE[k] * v for k, v in lut_features(layer, pe, simd).items())


def candidates(layer):
    """``[(pe, simd, cycles, lut4 estimate)]``: the foldings of ``layer``
    that no other beats in both estimated LUTs and cycles, cheapest first."""
    o, i = layer.out_features, layer.in_features
    options = sorted((estimate_luts(layer, pe, simd), -simd, pe, simd)
                     for pe in range(1, o + 1) if o % pe == 0 for simd in range(1, i + 1) if i % simd == 0)
    out, best = [], None
    for luts, _, pe, simd in options:
        cycles = estimate_cycles(layer, pe, simd)
        if best is None or cycles < best:
            out.append((pe, simd, cycles, luts))
            best = cycles
    return out


def conv_windows(layer):
    """The windows a conv layer computes per map when folded: the ones its
    pooling keeps."""
    _, ho, wo = layer.out_shape
    return layer.pool * ho * layer.pool * wo


def conv_interval(layer, pe, simd):
    """Clocks per map of conv ``layer`` folded to ``pe`` x ``simd``,
    streaming on its own: the windows wait for the datapath and the pixels
    for the windows (:mod:`hwgen.rtl.handshake`)."""
    return handshake.map_interval(handshake.folded_conv(layer, handshake.folded(schedule(layer, pe, simd), 0)),
                                  layer)


def layer_pace(layer, choice):
    """Clocks per inference of ``layer`` on its own under ``choice`` (``(pe,
    simd)``, or None: a conv layer on its constant-weight window datapath,
    which takes one pixel per clock) by the estimates ``choose_folding``
    uses: a dense layer takes its schedule + 1, a conv layer ``cycles + 1``
    per window it computes, or more where the pixels keep it waiting."""
    if choice is None:
        return layer.in_shape[1] * layer.in_shape[2]
    pe, simd = choice
    cycles = estimate_cycles(layer, pe, simd) + 1
    if layer.op == "dense":
        return cycles
    return max(conv_windows(layer) * cycles, conv_interval(layer, pe, simd))


def _fewest_lanes(layer, target_cycles):
    """The fewest lanes that keep ``layer`` at ``target_cycles`` or fewer:
    of those, the most SIMD, unless its ROM needs masks; then the least
    estimated LUTs. None where none does (a conv layer only tries up to
    half the lanes of its constant-weight datapath). Over blocks of one bit
    count 16 wide, 16 x 16 lanes need no masks where 4 x 64 do (302 k LUT4
    x clocks against 317 k on the digits MLP); the estimate alone misjudged
    uniform tiles (4 x 32 lanes for 2 x 64 measured 6 % more), and "no
    masks" alone picks 64 x 1 over 1 x 64 for per-weight bits."""
    o, i = layer.out_features, layer.in_features
    by_lanes = {}
    for pe in (d for d in range(1, o + 1) if o % d == 0):
        for simd in (d for d in range(1, i + 1) if i % d == 0):
            by_lanes.setdefault(pe * simd, []).append((pe, simd))
    for lanes in sorted(by_lanes):
        if layer.op == "conv2d" and 2 * lanes > o * i:
            return None
        fits = sorted((c for c in by_lanes[lanes] if layer_pace(layer, c) <= target_cycles), key=lambda c: -c[1])
        if fits:
            if not _masked(layer, *fits[0]):
                return fits[0]
            return min(fits, key=lambda c: (estimate_luts(layer, *c), -c[1]))
    return None


def _balance(model, folding, fixed):
    """``folding`` with its slowest dense layers sped up to the pace of a
    faster layer, where that lowers estimated LUTs x interval.

    Each layer gets the fewest lanes that meet the target, but lane counts
    come in steps (PE and SIMD divide the layer), so one layer may land far
    under the target while a small one sets the network's interval: the
    digits MLP at 1.4 bits and 520 clocks had fc0 at 358 clocks and fc2 at
    448. Each faster pace that the layers already have is tried: the dense
    layers slower than it take the fewest lanes that keep it (the layers in
    ``fixed``, set by hand, and conv layers stay), and the pace with the
    least sum of :func:`estimate_luts` times interval wins. The interval
    never drops below the fastest pace a layer already had, so a design
    outruns its target only by steps the lanes already forced."""
    def cost(choices):
        return sum(estimate_luts(layer, *c) for layer, c in zip(model.layers, choices) if c is not None)

    paces = [layer_pace(layer, c) for layer, c in zip(model.layers, folding)]
    best, best_score = folding, cost(folding) * max(paces)
    for pace in sorted(set(paces))[:-1]:
        tried = []
        for layer, c, p in zip(model.layers, folding, paces):
            if p > pace and (layer.name in fixed or layer.op != "dense"):
                break
            tried.append(c if p <= pace else _fewest_lanes(layer, pace))
            if tried[-1] is None:
                break
        else:
            if cost(tried) * pace < best_score:
                best, best_score = tried, cost(tried) * pace
    return best


def choose_folding(model, target_cycles=64, overrides=None):
    """One ``(pe, simd)`` per layer, or None (a conv layer on its
    constant-weight window datapath): ``overrides`` (layer name -> ``(pe,
    simd)``) where given, else the fewest lanes (PE x SIMD; on a tie, more
    SIMD, or the least estimated LUTs where that needs masks) whose layer streams at ``target_cycles``
    clocks per inference or fewer, then balanced (:func:`_balance`): slow
    dense layers may get more lanes to keep the pace of a faster layer. A
    dense layer that cannot meet the target gets its fastest folding. A conv
    layer takes ``cycles + 1`` clocks per window it computes
    (:func:`conv_windows`), and more where the pixels between windows keep
    it waiting (:func:`conv_interval`); it is folded only where that meets
    the target with at most half the lanes of its constant-weight datapath
    (one per weight), which is cheaper at equal width. With conv layers the network
    streams one image per ``H * W`` clocks at best (the first conv layer
    takes a pixel per clock), so a smaller target is raised to that: faster
    dense layers would only idle."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - {layer.name for layer in model.layers})
    if unknown:
        raise HwgenError(f"--fold names {', '.join(unknown)}, which the model does not have "
                         f"(layers: {', '.join(layer.name for layer in model.layers)})")
    if target_cycles < 2:
        raise HwgenError(f"target cycles per inference must be >= 2 (a folded layer takes its "
                         f"schedule + 1 clocks), not {target_cycles}")
    convs = [layer for layer in model.layers if layer.op == "conv2d"]
    if convs:
        target_cycles = max(target_cycles, convs[0].in_shape[1] * convs[0].in_shape[2])
    folding = []
    for layer in model.layers:
        if layer.name in overrides:
            folding.append(tuple(overrides[layer.name]))
            schedule(layer, *folding[-1])     # one clear error where PE or SIMD does not divide the layer
        else:
            best = _fewest_lanes(layer, target_cycles)
            folding.append(best or (None if layer.op == "conv2d" else (layer.out_features, layer.in_features)))
    return _balance(model, folding, set(overrides))
