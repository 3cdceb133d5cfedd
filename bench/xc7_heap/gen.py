#!/usr/bin/env python3
"""Generate xc7 XNOR-popcount-threshold neuron  y = (popcount(x ~^ W) >= T)
as explicit LUT6_2 / CARRY4 primitive netlists (plain Verilog).

Structures (--mode):
  heap   : bit-heap compressor tree built only from carry-chain "ternary adder"
           slices.  Each column slice = one LUT6_2 (I5=1):
              O6 = a^b^c^prev  -> CARRY4.S      (propagate)
              O5 = maj(a,b,c)  -> next slice's LUT input + next slice's CARRY4.DI
              DI = prev        (prev = previous slice's O5, or a raw bit 'd' at the
                                chain's first column)
              CYINIT = raw bit 'e' (carry-in absorbs a 5th bit)
           so a chain over k columns adds 3k+2 heap bits with k LUTs and emits
           k sum bits (CARRY4.O) + 2 bits one column higher (last O5, CARRY4.CO).
           Leaves are the k=1 case: 5 bits -> 3 bits in one LUT6_2.
           Threshold: constant C = 2^M - T is put into the heap at the start
           (constant operand bits are folded into LUT INITs), the final chain is
           run up to column M and y = CARRY4.O at column M.
  fa     : same, but the first stage uses 3:2 full adders in one LUT6_2 each
           (O6 = sum, O5 = carry), then the carry-chain heap tree.
  plain  : assign y = ($countones(x ~^ W) >= T)
XNOR with weight 0 is an inverted input: folded into the INIT of the LUT that
reads it.  Raw bits used as DI/CYINIT (d/e) are always chosen among weight-1
(non-inverted) inputs or computed bits.
"""
import argparse, os, random, sys
from collections import defaultdict


class Bit:
    __slots__ = ("sig", "inv", "const", "depth")

    def __init__(self, sig=None, inv=False, const=None, depth=0):
        self.sig, self.inv, self.const, self.depth = sig, inv, const, depth

    def can_raw(self):           # usable as DI / CYINIT (no logic available)
        return self.const is not None or not self.inv

    def vexpr(self):             # Verilog expression when used raw
        if self.const is not None:
            return "1'b1" if self.const else "1'b0"
        assert not self.inv
        return self.sig


class Gen:
    def __init__(self, N, w, T, mode, cont_min=3, one_raw=False):
        self.one_raw = one_raw
        self.pack = 0          # >0: pack chains into shared CARRY4 chains of <= pack CARRY4s
        self.pending = []
        self.ninj = 0
        self.N, self.w, self.T, self.mode, self.cont_min = N, w, T, mode, cont_min
        self.lines, self.wires = [], []
        self.nlut = self.ncarry = self.nid = 0
        self.stages = 0

    def new(self, pfx="n"):
        self.nid += 1
        name = f"{pfx}{self.nid}"
        self.wires.append(name)
        return name

    # ---- LUT6_2 with up to 5 variable pins, I5 tied high -----------------
    def lut(self, pins, f6, f5=None):
        """pins: list of Bit (distinct non-const signals, inv folded in);
        f6/f5: functions of list of *effective* pin values (after inversion)."""
        assert len(pins) <= 5
        init = 0
        for j in range(32):
            vals = [((j >> i) & 1) ^ int(p.inv) for i, p in enumerate(pins)]
            if f6(vals):
                init |= 1 << (32 + j)
            if f5 is not None and f5(vals):
                init |= 1 << j
        o6, o5 = self.new("o6_"), (self.new("o5_") if f5 is not None else None)
        conn = [p.sig for p in pins] + ["1'b0"] * (5 - len(pins))
        d = 1 + max([p.depth for p in pins] + [0])
        self.nlut += 1
        self.lines.append(
            f"  LUT6_2 #(.INIT(64'h{init:016X})) L{self.nlut} (.O6({o6}), .O5({o5 or ''}), "
            + ", ".join(f".I{i}({c})" for i, c in enumerate(conn)) + ", .I5(1'b1));")
        return Bit(o6, depth=d), (Bit(o5, depth=d) if o5 else None)

    # ---- carry-chain ternary adder over consecutive columns --------------
    def chain(self, cols, d=None, e=None):
        """cols: list (per column, ascending) of lists of <=3 operand Bits.
        d: raw Bit added at the first column (DI), e: raw Bit carry-in.
        returns (sum_bits per column, [top bits at column len(cols)])"""
        k = len(cols)
        prev = d
        S, DI, sums_depth = [], [], []
        m_last = None
        for j, ops in enumerate(cols):
            assert len(ops) <= 3
            pins, getters = [], []
            def add_pin(b):
                if b is None:
                    return lambda v: 0
                if b.const is not None:
                    c = b.const
                    return lambda v: c
                idx = len(pins)
                pins.append(b)
                return lambda v, idx=idx: v[idx]
            og = [add_pin(b) for b in ops]
            pg = add_pin(prev)
            f6 = lambda v, og=og, pg=pg: (sum(g(v) for g in og) + pg(v)) & 1
            need_m = len(ops) >= 2
            f5 = (lambda v, og=og: int(sum(g(v) for g in og) >= 2)) if need_m else None
            o6, o5 = self.lut(pins, f6, f5)
            S.append(o6)
            DI.append(prev.vexpr() if prev is not None else "1'b0")
            prev = o5  # may be None (maj of <=1 operands == 0)
            m_last = o5
        # carry positions: (S, DI, O-wire, CO-wire)
        pos = []
        if self.pack:
            # injector position: S=0 kills the incoming carry, DI=e injects the carry-in
            pos.append(["1'b0", e.vexpr() if e is not None else "1'b0", None, self.new("pc")])
            self.ninj += 1
        for j in range(k):
            pos.append([S[j].sig, DI[j], self.new("po"), None])
        pos[-1][3] = self.new("pc")
        off = 1 if self.pack else 0
        osig = [pos[off + j][2] for j in range(k)]
        co_last = pos[-1][3]
        if self.pack:
            self.pending.extend(pos)
            if len(self.pending) >= 4 * self.pack:
                self.flush()
        else:
            self.emit_carry(pos, e.vexpr() if e is not None else "1'b0")
        # depth: LUT levels (carry chain adds no LUT level)
        dmax = 0
        sums = []
        for j in range(k):
            dmax = max(dmax, S[j].depth, (d.depth if (j == 0 and d is not None and d.const is None) else 0),
                       (e.depth if (e is not None and e.const is None) else 0))
            sums.append(Bit(osig[j], depth=dmax))
        top = [Bit(co_last, depth=dmax)]
        if m_last is not None:
            top.append(m_last)
        return sums, top

    def emit_carry(self, pos, cyinit="1'b0"):
        ci = zero = "1'b0"
        for c in range(0, len(pos), 4):
            blk = pos[c:c + 4]
            while len(blk) < 4:
                blk = blk + [["1'b0", "1'b0", None, None]]
            def cat(idx, pfx):
                out = []
                for q in reversed(range(4)):
                    nm = blk[q][idx]
                    if nm is None:
                        nm = self.new(pfx)
                    out.append(nm)
                return "{" + ", ".join(out) + "}"
            self.ncarry += 1
            co = cat(3, "pcx")
            self.lines.append(
                f"  CARRY4 C{self.ncarry} (.CO({co}), .O({cat(2, 'pox')}), .CI({ci}), "
                f".CYINIT({cyinit if c == 0 else zero}), "
                f".DI({cat(1, '')}), .S({cat(0, '')}));")
            ci = co[1:].split(",")[0]
        # (the CO[3] wire of the block is the next block's CI)

    def flush(self):
        if self.pending:
            self.emit_carry(self.pending)
            self.pending = []

    # ---- helpers --------------------------------------------------------
    @staticmethod
    def take_ops(bits, n=3):
        """take n operand bits, preferring ones that can't be used raw (inverted)"""
        bits.sort(key=lambda b: (b.can_raw(), b.depth))
        ops = bits[:n]
        del bits[:n]
        return ops

    @staticmethod
    def take_raw(bits):
        for i, b in enumerate(bits):
            if b.can_raw():
                return bits.pop(i)
        return None

    def stage(self, heap):
        new = defaultdict(list)
        open_ads = []   # each: dict(lo, cols, d, e)
        maxc = max(heap) if heap else 0
        col = min(heap)
        def close(ad):
            sums, top = self.chain(ad["cols"], ad["d"], ad["e"])
            for j, b in enumerate(sums):
                new[ad["lo"] + j].append(b)
            for b in top:
                new[ad["lo"] + len(ad["cols"])].append(b)
        while col <= maxc or open_ads:
            bits = list(heap.get(col, []))
            still = []
            for ad in open_ads:
                if len(bits) >= self.cont_min:
                    ad["cols"].append(self.take_ops(bits))
                    still.append(ad)
                else:
                    close(ad)
            nxt = len(heap.get(col + 1, []))
            while len(bits) >= 3:
                nraw = sum(b.can_raw() for b in bits)
                if len(bits) == 3 and nxt < 3:
                    break      # 3 bits alone -> 3 bits out: no gain
                ops = self.take_ops(bits)
                d = self.take_raw(bits)
                e = None if self.one_raw else self.take_raw(bits)
                still.append(dict(lo=col, cols=[ops], d=d, e=e))
                nxt -= 3
            new[col].extend(bits)
            open_ads = still
            col += 1
        self.flush()
        self.stages += 1
        return {c: v for c, v in new.items() if v}

    def fa_stage(self, heap):
        """3:2 full adders in one LUT6_2 each on every column"""
        new = defaultdict(list)
        for col in sorted(heap):
            bits = list(heap[col])
            while len(bits) >= 3:
                ops = self.take_ops(bits)
                pins = [b for b in ops if b.const is None]
                cst = sum(b.const for b in ops if b.const is not None)
                s, c = self.lut(pins, lambda v: (sum(v) + cst) & 1, lambda v: int(sum(v) + cst >= 2))
                new[col].append(s)
                new[col + 1].append(c)
            new[col].extend(bits)
        self.stages += 1
        return dict(new)

    def final_ok(self, heap, M):
        if max(heap) > M:
            return False
        lo = min(heap)
        for c, v in heap.items():
            lim = 3 + (min(1 if self.one_raw else 2, sum(b.can_raw() for b in v)) if c == lo else 0)
            if len(v) > lim:
                return False
        return True

    def build(self):
        N, T = self.N, self.T
        M = 0
        while (1 << M) <= N - T or (1 << M) < T:
            M += 1
        C = (1 << M) - T
        assert C >= 0
        heap = defaultdict(list)
        for i in range(N):
            heap[0].append(Bit(f"x[{i}]", inv=not self.w[i]))
        for c in range(M + 1):
            if (C >> c) & 1:
                heap[c].append(Bit(const=1))
        heap = dict(heap)
        if self.mode == "fa":
            heap = self.fa_stage(heap)
        while not self.final_ok(heap, M):
            before = sum(map(len, heap.values()))
            heap = self.stage(heap)
            after = sum(map(len, heap.values()))
            if after >= before:
                raise RuntimeError(f"no progress {before}->{after}: {[(c, len(v)) for c, v in sorted(heap.items())]}")
        # final chain columns lo..M
        lo = min(heap)
        cols = []
        d = e = None
        for c in range(lo, M + 1):
            bits = list(heap.get(c, []))
            if c == lo and len(bits) > 3:
                d = self.take_raw(bits)
                if len(bits) > 3 and not self.one_raw:
                    e = self.take_raw(bits)
            cols.append(bits)
        sums, top = self.chain(cols, d, e)
        self.flush()
        y = sums[M - lo]
        self.stages += 1
        self.depth = y.depth
        self.lines.append(f"  assign y = {y.vexpr()};")

    def verilog(self):
        out = [f"module pop_top(input [{self.N-1}:0] x, output y);"]
        for wname in self.wires:
            out.append(f"  wire {wname};")
        out += self.lines
        out.append("endmodule")
        return "\n".join(out) + "\n"


def weights(N):
    rng = random.Random(int(os.environ.get('POP_SEED', 0)))
    return [rng.getrandbits(1) for _ in range(N)]


def wconst(N, w):
    return f"{N}'b" + "".join(str(w[i]) for i in reversed(range(N)))


def plain(N, w, T):
    return (f"module pop_top(input [{N-1}:0] x, output y);\n"
            f"  localparam [{N-1}:0] W = {wconst(N, w)};\n"
            f"  assign y = ($countones(x ~^ W) >= {T});\nendmodule\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("N", type=int)
    ap.add_argument("--mode", default="heap", choices=["heap", "fa", "plain"])
    ap.add_argument("--cont-min", type=int, default=3)
    ap.add_argument("--one-raw", action="store_true",
                    help="physically legal xc7 packing: a chain start gets only the DI0 bypass bit d "
                         "(AX feeds both DI0-bypass and CYINIT, so d and carry-in e cannot both be raw)")
    ap.add_argument("--pack", type=int, default=0,
                    help="share CARRY4s between chains (injector position S=0/DI=e between chains); "
                         "value = max CARRY4s per shared chain")
    ap.add_argument("-o", default="pop.v")
    a = ap.parse_args()
    N = a.N
    w = weights(N)
    T = int(os.environ.get('POP_T', N // 2))
    if a.mode == "plain":
        open(a.o, "w").write(plain(N, w, T))
        print(f"N={N} plain")
        return
    g = Gen(N, w, T, a.mode, a.cont_min, a.one_raw)
    g.pack = a.pack
    g.build()
    open(a.o, "w").write(g.verilog())
    print(f"N={N} mode={a.mode}{' one-raw' if a.one_raw else ''}{' pack' + str(a.pack) if a.pack else ''} LUT={g.nlut} ({g.nlut/N:.3f}/bit) CARRY4={g.ncarry} "
          f"stages={g.stages} lut_depth={g.depth}" + (f" injector_positions={g.ninj}" if a.pack else ""))


if __name__ == "__main__":
    main()
