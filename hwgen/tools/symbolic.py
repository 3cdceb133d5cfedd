"""Symbolic proof of a combinational layer: its exact linear forms, read off the netlist.

A SAT miter of two differently shaped adder trees takes time exponential in
the fan-in (:mod:`hwgen.tools.equiv`). This proof does not compare circuits
bit by bit. It evaluates the layer's word-level netlist (Yosys ``proc;
flatten``, as every other hwgen tool reads the Verilog) over *affine forms*:
every word a cell computes is held as ``c0 + sum_i c_i x_i`` over the
module's input bits ``x_i`` in {0, 1}, with integer coefficients, together
with its exact range (``c0 + sum min(0, c_i)`` to ``c0 + sum max(0, c_i)``:
the bits are independent, so these bounds are attained).

* ``$add``, ``$sub``, ``$neg``, ``$pos``, ``$mul`` by a constant, shifts by a
  constant, and bitwise ops with a constant side are evaluated exactly.
* Reading the low ``m`` bits of a word as an operand is the word itself only
  when its whole range fits ``m`` bits (signed or unsigned, as the reader
  takes it); that is the overflow-freedom argument, checked at every read.
  Sign and zero extension and concatenations are followed bit by bit.
* A comparison (``$ge`` ...), or a word's bit ``k`` where the word's range
  lies inside one ``2^(k+1)`` window (the carry-out of
  :meth:`~hwgen.rtl.arith.Adders.at_least`), is a *threshold*: the bit is 1
  iff ``P . x >= T``, normalized so ``P`` has no common factor.

Anything else (a multiplexer, a register, a comparison feeding an adder, an
adder that may wrap) stops the proof with its cell named: the layer is then
*unproven*, never passed.

The artifact's neuron ``o`` is the same kind of form (:func:`reference_forms`).
A score must equal the artifact's form exactly; a differing form is
different for some input, and one is given. Two thresholds with equal ``P``
and equal ``T`` are the same function. With equal ``P`` and different
``T``, the two differ iff some input reaches a sum between the two ``T``;
the reachable sums of ``P`` are enumerated exactly (a bitset, one shift per
input bit), so a threshold moved into a gap of reachable sums is reported
as *equivalent*, and one moved across a reachable sum gets that input as a
counterexample. A few differing coefficients (a flipped weight bit) are
enumerated the same way.
"""
import json
import math
import subprocess
import time
from pathlib import Path

from ..errors import HwgenError
from ..core.manifest import read_manifest
from .synth import yosys_executable

__all__ = ["Unsupported", "netlist_forms", "reference_forms", "compare_threshold", "judge_outputs",
           "prove_layer", "MAX_REACH_BITS", "MAX_DIFFERING"]

#: the reachable-sum enumeration gives up beyond this many distinct sums
#: (a Python int bitset of 2^26 bits is 8 MB, shifted once per input bit)
MAX_REACH_BITS = 1 << 26
#: differing coefficients enumerated (2^k assignments) before giving up
MAX_DIFFERING = 12


class Unsupported(Exception):
    """The netlist holds something the affine evaluation cannot follow exactly;
    ``word``: the word that may wrap, where that is the reason."""

    def __init__(self, message, word=None):
        super().__init__(message)
        self.word = word


# --------------------------------------------------------------------------- affine forms
# A form is (coeffs: dict var -> nonzero int, const: int).

def _add(f, g, k=1):
    c = dict(f[0])
    for v, a in g[0].items():
        s = c.get(v, 0) + k * a
        if s:
            c[v] = s
        else:
            c.pop(v, None)
    return c, f[1] + k * g[1]


def _scale(f, k):
    return ({v: a * k for v, a in f[0].items()} if k else {}), f[1] * k


def _const(n):
    return {}, n


def _range(f):
    lo = f[1] + sum(a for a in f[0].values() if a < 0)
    hi = f[1] + sum(a for a in f[0].values() if a > 0)
    return lo, hi


def _var(i):
    return {i: 1}, 0


class _Word:
    """A cell's result as an integer: ``form`` with its exact range."""
    __slots__ = ("form", "lo", "hi", "cell")

    def __init__(self, form, cell):
        self.form, self.cell = form, cell
        self.lo, self.hi = _range(form)


# Bits: ("c", 0|1) | ("b", form) a 0/1-valued form | ("t", form) 1 iff form >= 0
#       | ("s", word, k) bit k of a word | ("u", reason) something unsupported

def _not_bit(bit):
    kind = bit[0]
    if kind == "c":
        return ("c", 1 - bit[1])
    if kind == "b":
        return ("b", _add(_const(1), bit[1], -1))
    if kind == "t":                   # not (F >= 0)  <=>  -F - 1 >= 0 over the integers
        return ("t", _add(_const(-1), bit[1], -1))
    b = _as_boolean(bit)
    return _not_bit(b) if b[0] != "u" else b


def _fit(form, m, signed):
    """The integer that the low ``m`` bits of ``form``'s value hold, read
    signed or unsigned, as a form, or None where that is no affine form.

    The bits hold ``R mod 2^m``. If ``R``'s range fits the reading's range,
    that is ``R``. Otherwise each coefficient is replaced by its residue
    nearest 0 modulo ``2^m`` and the constant by the residue that places the
    range inside the reading's: a form congruent to ``R`` whose range fits
    is the value itself (two numbers congruent mod ``2^m`` inside one range
    of ``2^m`` are equal). This is the overflow-freedom argument, exact for
    every input; it covers Amaranth's signed products written as unsigned
    ones of the result's width."""
    lo_r, hi_r = (-(1 << (m - 1)), (1 << (m - 1)) - 1) if signed else (0, (1 << m) - 1)
    lo, hi = _range(form)
    if lo_r <= lo and hi <= hi_r:
        return form
    mod, half = 1 << m, 1 << (m - 1)
    coeffs = {}
    for v, a in form[0].items():
        r = (a + half) % mod - half
        if r:
            coeffs[v] = r
    llo, lhi = _range((coeffs, 0))
    c = lo_r - llo + (form[1] - (lo_r - llo)) % mod
    if lhi + c > hi_r:
        return None
    return coeffs, c


def _as_boolean(bit):
    """A bit as a 0/1 function (const, 0/1 form or threshold), or "u"."""
    if bit[0] != "s":
        return bit
    _, w, k = bit
    low = _fit(w.form, k + 1, False)    # bit k of R is bit k of R mod 2^(k+1), in 0..2^(k+1)-1
    if low is None:
        low = _fit(w.form, k + 1, True)     # or the sign bit of R read as k+1 signed bits
        if low is None:
            return ("u", f"bit {k} of {w.cell}'s result (range {w.lo}..{w.hi}) is not a single threshold", w)
        return ("t", _add(_const(-1), low, -1))   # 1 iff the signed value < 0, i.e. -V - 1 >= 0
    if k == 0:
        return ("b", low)
    return ("t", _add(low, _const(-(1 << k))))


def _read(bits, signed, where):
    """The integer value of ``bits`` (LSB first) read signed or unsigned, as a form."""
    bits = list(bits)
    if signed:
        while len(bits) > 1 and bits[-1] == bits[-2]:
            bits.pop()                # sign extension keeps the signed value
    total, pos, i, n = _const(0), 0, 0, len(bits)
    while i < n:
        bit = bits[i]
        if bit[0] == "s":             # a run of consecutive bits of one word
            _, w, k = bit
            j = i + 1
            while j < n and bits[j][0] == "s" and bits[j][1] is w and bits[j][2] == k + (j - i):
                j += 1
            m, top = j - i, signed and j == n
            if k == 0:
                value = _fit(w.form, m, top)
                if value is None:
                    raise Unsupported(f"{where} reads {m} bits of {w.cell}'s result, whose range "
                                      f"{w.lo}..{w.hi} needs more: the value may wrap", w)
                total = _add(total, value, 1 << pos)
                pos, i = pos + m, j
                continue
            bit = _as_boolean(bit)
            if bit[0] == "u" or m > 1:
                raise Unsupported(f"{where} reads bits {k}.. of {w.cell}'s result")
        top = signed and i == n - 1
        weight = -(1 << pos) if top else 1 << pos
        if bit[0] == "c":
            total = _add(total, _const(bit[1] * weight))
        elif bit[0] == "b":
            total = _add(total, bit[1], weight)
        elif bit[0] == "t":
            raise Unsupported(f"{where} adds a comparison's result")
        else:
            raise Unsupported(f"{where}: {bit[1]}", bit[2] if len(bit) > 2 else None)
        pos, i = pos + 1, i + 1
    return total


def _extend(bits, width, signed):
    bits = list(bits)[:width] if len(bits) >= width else list(bits)
    fill = bits[-1] if signed and bits else ("c", 0)
    return bits + [fill] * (width - len(bits))


# --------------------------------------------------------------------------- the netlist

def _netlist_json(rtl_dir, sources, module, work):
    """Yosys's word-level JSON of ``module`` (flattened) from ``sources``, written in ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    stem = module.replace("\\", "").replace(".", "_")
    script = (f"read_verilog {' '.join(f'../{s}' for s in sources)}\n"
              f"hierarchy -check -top \\{module}\nproc\nflatten\nopt_clean\n"
              f"write_json {stem}.json\n")
    (work / f"{stem}.sym.ys").write_text(script)
    proc = subprocess.run([yosys_executable(), "-q", "-s", f"{stem}.sym.ys"], cwd=work,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
        raise HwgenError(f"yosys could not read {module} for the symbolic proof: {tail or 'no output'}")
    data = json.loads((work / f"{stem}.json").read_text())
    mods = data.get("modules", {})
    if module not in mods:
        raise HwgenError(f"yosys's netlist has no module {module}")
    return mods[module]


def _param(cell, name, default=0):
    v = cell["parameters"].get(name, default)
    if isinstance(v, str):
        v = v.strip()
        return int(v, 2) if v and set(v) <= {"0", "1"} else default
    return int(v)


_ARITH = {"$add", "$sub", "$mul", "$neg", "$pos"}
_COMPARE = {"$ge": (1, 0), "$gt": (1, -1), "$le": (-1, 0), "$lt": (-1, -1)}
_BITWISE = {"$and", "$or", "$xor", "$xnor"}
_SHIFTS = {"$shl", "$sshl", "$shr", "$sshr"}


def netlist_forms(mod, inputs):
    """Evaluate module JSON ``mod``: returns ``{port: [bit, ...]}`` for its
    output ports. ``inputs``: ``{port: [var index per bit]}``."""
    val = {}   # Yosys bit id -> bit
    for port, var_ids in inputs.items():
        for bid, v in zip(mod["ports"][port]["bits"], var_ids):
            val[bid] = ("b", _var(v))

    def bit_of(b):
        if isinstance(b, str):
            return ("c", 1) if b == "1" else ("c", 0) if b == "0" else ("u", f"an undefined bit ({b!r})")
        return val.get(b)

    cells = list(mod.get("cells", {}).items())
    driven = {}
    for name, cell in cells:
        for port, direction in cell.get("port_directions", {}).items():
            if direction == "output":
                for b in cell["connections"][port]:
                    if not isinstance(b, str):
                        driven[b] = name
    pending, order = {n for n, _ in cells}, []
    by_name = dict(cells)
    deps = {}
    for name, cell in cells:
        ins = {driven[b] for p, d in cell.get("port_directions", {}).items() if d == "input"
               for b in cell["connections"][p] if not isinstance(b, str) and b in driven}
        deps[name] = ins
    users = {}
    for name, ins in deps.items():
        for d in ins:
            users.setdefault(d, set()).add(name)
    count = {n: len(deps[n]) for n in pending}
    ready = sorted(n for n in pending if count[n] == 0)
    while ready:
        name = ready.pop()
        order.append(name)
        for u in sorted(users.get(name, ())):
            count[u] -= 1
            if count[u] == 0:
                ready.append(u)
    if len(order) != len(cells):
        raise Unsupported("the netlist has a combinational loop")

    for name in order:
        cell = by_name[name]
        kind, conn = cell["type"], cell["connections"]
        where = f"cell {name} ({kind})"
        ywidth = _param(cell, "Y_WIDTH", len(conn.get("Y", [])))
        out = conn.get("Y")
        if out is None:     # a register, a memory, an assertion: outside what this proof follows
            raise Unsupported(f"{where}: a {kind} cell, which the symbolic proof does not evaluate")
        try:
            bits_out = _eval_cell(kind, cell, conn, bit_of, ywidth, where, name)
        except Unsupported as exc:   # only an error if something reads it
            bits_out = [("u", str(exc), exc.word)] * len(out)
        for b, v in zip(out, bits_out):
            if not isinstance(b, str):
                val[b] = v
    result = {}
    for port, spec in mod["ports"].items():
        if spec["direction"] == "output":
            bits = []
            for b in spec["bits"]:
                v = bit_of(b)
                bits.append(v if v is not None else ("u", f"output {port} bit {b} is driven by nothing known"))
            result[port] = bits
    return result


def _eval_cell(kind, cell, conn, bit_of, ywidth, where, name):
    def operand(p):
        bits = []
        for b in conn[p]:
            v = bit_of(b)
            if v is None:
                raise Unsupported(f"{where}'s input {p} comes from no cell hwgen can follow")
            bits.append(v)
        return bits

    a_signed = bool(_param(cell, "A_SIGNED"))
    b_signed = bool(_param(cell, "B_SIGNED"))
    if kind == "$pos":
        return _extend(operand("A"), ywidth, a_signed)
    if kind in _ARITH:
        signed = a_signed and (b_signed if "B" in conn else True)
        a = _read(operand("A"), signed, where)
        if kind == "$neg":
            return _word(_scale(a, -1), ywidth, name)
        b = _read(operand("B"), signed, where)
        if kind == "$add":
            return _word(_add(a, b), ywidth, name)
        if kind == "$sub":
            return _word(_add(a, b, -1), ywidth, name)
        if a[0] and b[0]:
            raise Unsupported(f"{where} multiplies two variable words")
        const, other = (a[1], b) if not a[0] else (b[1], a)
        return _word(_scale(other, const), ywidth, name)
    if kind in _COMPARE:
        signed = a_signed and b_signed
        sign, offset = _COMPARE[kind]
        f = _add(_read(operand("A"), signed, where), _read(operand("B"), signed, where), -1)
        return [("t", _add(_scale(f, sign), _const(offset)))] + [("c", 0)] * (ywidth - 1)
    if kind == "$not":
        return [_not_bit(b) for b in _extend(operand("A"), ywidth, a_signed)]
    if kind in _BITWISE:
        a = _extend(operand("A"), ywidth, a_signed)
        b = _extend(operand("B"), ywidth, b_signed)
        if all(x[0] == "c" for x in a):
            a, b = b, a
        if not all(x[0] == "c" for x in b):
            raise Unsupported(f"{where} combines two variable words bit by bit")
        out = []
        for x, (_, k) in zip(a, b):
            if kind == "$and":
                out.append(x if k else ("c", 0))
            elif kind == "$or":
                out.append(("c", 1) if k else x)
            else:
                out.append(_not_bit(x) if k ^ (kind == "$xnor") else x)
        return out
    if kind in _SHIFTS:
        b = operand("B")
        if not all(x[0] == "c" for x in b):
            raise Unsupported(f"{where} shifts by a variable amount")
        n = sum(x[1] << i for i, x in enumerate(b))
        if b_signed and b and b[-1][1]:
            n -= 1 << len(b)
        a = operand("A")
        if kind in ("$shl", "$sshl"):
            return ([("c", 0)] * n + _extend(a, max(ywidth - n, 0), a_signed))[:ywidth]
        fill = a[-1] if kind == "$sshr" and a_signed and a else ("c", 0)
        a = a[n:] if n >= 0 else [("c", 0)] * -n + a
        return (a + [fill] * ywidth)[:ywidth]
    raise Unsupported(f"{where}: a {kind} cell, which the symbolic proof does not evaluate")


def _word(form, width, name):
    w = _Word(form, name)
    return [("s", w, k) for k in range(width)]


# --------------------------------------------------------------------------- concrete values

def _signed_of(v, width):
    return v - (1 << width) if width and v >> (width - 1) & 1 else v


def evaluate(mod, inputs):
    """Concrete evaluation of module JSON ``mod`` (Yosys's cell semantics on
    integers): ``inputs`` ``{port: int}``, returns ``{output port: int}``.
    The check of a counterexample, independent of the affine reasoning."""
    val = {}
    for port, value in inputs.items():
        for k, bid in enumerate(mod["ports"][port]["bits"]):
            val[bid] = (value >> k) & 1

    def word(bits):
        out = 0
        for k, b in enumerate(bits):
            v = (1 if b == "1" else 0) if isinstance(b, str) else val[b]
            out |= v << k
        return out

    cells = mod.get("cells", {})
    driven = {b: n for n, c in cells.items() for p, d in c.get("port_directions", {}).items()
              if d == "output" for b in c["connections"][p] if not isinstance(b, str)}
    done, stack = set(), []

    def need(name):
        stack.append((name, False))
        while stack:
            n, expanded = stack.pop()
            if n in done:
                continue
            c = cells[n]
            ins = [driven[b] for p, d in c.get("port_directions", {}).items() if d == "input"
                   for b in c["connections"][p] if not isinstance(b, str) and b in driven
                   and driven[b] not in done]
            if ins and not expanded:
                stack.append((n, True))
                stack.extend((i, False) for i in ins)
                continue
            _concrete_cell(c, word, val)
            done.add(n)

    for name in cells:
        need(name)
    return {port: word(spec["bits"]) for port, spec in mod["ports"].items() if spec["direction"] == "output"}


def _concrete_cell(cell, word, val):
    kind, conn = cell["type"], cell["connections"]
    if "Y" not in conn:
        raise Unsupported(f"a {kind} cell, which the concrete evaluation does not follow")
    yw = len(conn["Y"])
    a_signed, b_signed = bool(_param(cell, "A_SIGNED")), bool(_param(cell, "B_SIGNED"))
    a_raw = word(conn["A"]) if "A" in conn else 0
    b_raw = word(conn["B"]) if "B" in conn else 0
    aw, bw = len(conn.get("A", [])), len(conn.get("B", []))
    both = a_signed and (b_signed if "B" in conn else True)
    a = _signed_of(a_raw, aw) if both else a_raw
    b = _signed_of(b_raw, bw) if both else b_raw
    ops = {"$add": lambda: a + b, "$sub": lambda: a - b, "$mul": lambda: a * b, "$neg": lambda: -a,
           "$pos": lambda: a, "$ge": lambda: int(a >= b), "$gt": lambda: int(a > b),
           "$le": lambda: int(a <= b), "$lt": lambda: int(a < b), "$eq": lambda: int(a == b),
           "$ne": lambda: int(a != b), "$logic_not": lambda: int(a_raw == 0),
           "$reduce_or": lambda: int(a_raw != 0), "$reduce_bool": lambda: int(a_raw != 0),
           "$reduce_and": lambda: int(a_raw == (1 << aw) - 1),
           "$logic_and": lambda: int(bool(a_raw) and bool(b_raw)),
           "$logic_or": lambda: int(bool(a_raw) or bool(b_raw))}
    if kind in ops:
        y = ops[kind]()
    elif kind in ("$not", "$and", "$or", "$xor", "$xnor"):
        ea = (_signed_of(a_raw, aw) if a_signed else a_raw) & ((1 << yw) - 1)
        eb = (_signed_of(b_raw, bw) if b_signed else b_raw) & ((1 << yw) - 1)
        y = {"$not": lambda: ~ea, "$and": lambda: ea & eb, "$or": lambda: ea | eb,
             "$xor": lambda: ea ^ eb, "$xnor": lambda: ~(ea ^ eb)}[kind]()
    elif kind in _SHIFTS:
        ea = _signed_of(a_raw, aw) if a_signed else a_raw
        n = _signed_of(b_raw, bw) if b_signed else b_raw
        y = ea << n if kind in ("$shl", "$sshl") else \
            (ea >> n if kind == "$sshr" else (ea & ((1 << max(aw, yw)) - 1)) >> n)
    elif kind == "$mux":
        y = b_raw if word(conn["S"]) else a_raw
    else:
        raise Unsupported(f"a {kind} cell, which the concrete evaluation does not follow")
    y &= (1 << yw) - 1
    for k, bid in enumerate(conn["Y"]):
        if not isinstance(bid, str):
            val[bid] = (y >> k) & 1


# --------------------------------------------------------------------------- thresholds

def _normalize(f):
    """``f >= 0`` as ``(P, T)``: 1 iff ``P . x >= T``, ``P`` with no common factor
    (``({}, 0)`` always, ``({}, 1)`` never)."""
    coeffs, c = f
    if not coeffs:
        return {}, (0 if c >= 0 else 1)
    g = 0
    for a in coeffs.values():
        g = math.gcd(g, a)
    return {v: a // g for v, a in coeffs.items()}, -((c) // g)   # ceil(-c / g)


class _Reach:
    """The sums ``P . x`` reachable over ``x`` in {0, 1}^n, as a bitset, with
    checkpoints to rebuild one input reaching a given sum."""

    def __init__(self, coeffs):
        self.vars = sorted(coeffs)
        self.mags = [abs(coeffs[v]) for v in self.vars]
        self.coeffs = coeffs
        self.base = sum(a for a in coeffs.values() if a < 0)   # the least sum: u = sum - base
        span = sum(self.mags) + 1
        if span > MAX_REACH_BITS:
            raise Unsupported(f"the neuron has {span:,} possible sums, more than the "
                              f"{MAX_REACH_BITS:,} the exact search enumerates")
        self.step = max(1, math.isqrt(len(self.mags)))
        self.checkpoints, s = [], 1
        for i, m in enumerate(self.mags):
            if i % self.step == 0:
                self.checkpoints.append(s)
            s |= s << m
        self.sets = s

    def first_in(self, lo, hi):
        """A reachable sum in ``lo..hi-1``, or None."""
        lo_u, hi_u = max(lo - self.base, 0), hi - self.base
        if hi_u <= lo_u:
            return None
        window = (self.sets >> lo_u) & ((1 << (hi_u - lo_u)) - 1)
        if not window:
            return None
        return lo_u + ((window & -window).bit_length() - 1) + self.base

    def last_in(self, lo, hi):
        """The largest reachable sum in ``lo..hi-1``, or None."""
        lo_u, hi_u = max(lo - self.base, 0), hi - self.base
        if hi_u <= lo_u:
            return None
        window = (self.sets >> lo_u) & ((1 << (hi_u - lo_u)) - 1)
        return lo_u + window.bit_length() - 1 + self.base if window else None

    def witness(self, total):
        """An assignment ``{var: 0|1}`` whose sum is ``total`` (reachable)."""
        u, x = total - self.base, {}
        n = len(self.mags)
        for seg in range((n - 1) // self.step, -1, -1):
            start = seg * self.step
            sets = [self.checkpoints[seg]]
            for m in self.mags[start:min(start + self.step, n) - 1]:
                sets.append(sets[-1] | (sets[-1] << m))
            for i in range(min(start + self.step, n) - 1, start - 1, -1):
                before = sets[i - start]
                m, v = self.mags[i], self.vars[i]
                taken = not (before >> u) & 1
                if taken:
                    u -= m
                    if not (before >> u) & 1:
                        raise AssertionError("reachable-sum witness lost its way")
                # u counts |a| for x = 1 when a > 0, for x = 0 when a < 0
                x[v] = int(taken) if self.coeffs[v] > 0 else int(not taken)
        if u != 0:
            raise AssertionError("reachable-sum witness did not reach its target")
        return x


def compare_threshold(rtl, ref):
    """Compare two thresholds (forms ``f`` meaning ``f >= 0``).

    Returns ``("proven", None)`` (same function: same form, or a threshold
    moved inside a gap of reachable sums), ``("counterexample", {var: bit})``
    (an input on which they differ; variables not named are 0), or
    ``("unproven", reason)``.
    """
    (p, t), (q, s) = _normalize(rtl), _normalize(ref)
    if p == q and t == s:
        return "proven", None
    differing = sorted(v for v in set(p) | set(q) if p.get(v, 0) != q.get(v, 0))
    if len(differing) > MAX_DIFFERING:
        x = _separate((p, t), (q, s)) or _separate((q, s), (p, t))
        if x is not None:
            return "counterexample", x
        return "unproven", (f"the RTL neuron's weights differ from the artifact's in {len(differing)} "
                            f"inputs, more than the {MAX_DIFFERING} the exact search enumerates, and "
                            f"a search found no input on which the two differ")
    common = {v: a for v, a in p.items() if v not in differing}
    reach = _Reach(common)
    for mask in range(1 << len(differing)):
        fixed = {v: (mask >> i) & 1 for i, v in enumerate(differing)}
        tp = t - sum(p.get(v, 0) * b for v, b in fixed.items())
        tq = s - sum(q.get(v, 0) * b for v, b in fixed.items())
        # with these bits fixed both fire iff the common sum reaches their threshold
        if tp == tq:
            continue
        hit = reach.first_in(min(tp, tq), max(tp, tq))
        if hit is not None:
            return "counterexample", {**reach.witness(hit), **fixed}
    return "proven", None


def _separate(a, b, starts=8):
    """An input on which threshold ``a = (P, T)`` fires and ``b`` does not,
    or None: a greedy descent on how far each is from that, from inputs on
    ``b``'s boundary (reachable-sum witnesses) and the corners. A search:
    finding none proves nothing."""
    (pa, ta), (pb, tb) = a, b
    names = sorted(set(pa) | set(pb))
    points = [{}, {v: 1 for v in names}, {v: int(pa.get(v, 0) > 0) for v in names}]
    try:
        reach = _Reach(pb)
        for hit in (reach.first_in(tb - 1 - k, tb - k) for k in range(starts)):
            if hit is not None:
                points.append(reach.witness(hit))
    except Unsupported:
        pass
    for x in points:
        x = {v: x.get(v, 0) for v in names}
        sa = sum(pa.get(v, 0) * x[v] for v in names) - ta     # wanted >= 0
        sb = sum(pb.get(v, 0) * x[v] for v in names) - tb     # wanted < 0
        for _ in range(4 * len(names) + 1):
            penalty = max(0, -sa) + max(0, sb + 1)
            if penalty == 0:
                return x
            best, move = penalty, None
            for v in names:
                sign = 1 - 2 * x[v]       # flipping v adds sign * coefficient
                na, nb = sa + sign * pa.get(v, 0), sb + sign * pb.get(v, 0)
                pen = max(0, -na) + max(0, nb + 1)
                if pen < best:
                    best, move = pen, (v, na, nb)
            if move is None:
                break
            v, sa, sb = move
            x[v] ^= 1
    return None


# --------------------------------------------------------------------------- the layer

def reference_forms(layer):
    """The artifact's layer over its input bits ``x[j * input_bits + b]``:
    ``(kind, [form per neuron])``, kind "threshold" (fires iff form >= 0) or
    "scores" (the score itself)."""
    if layer.input == "binary" and layer.input_bits != 1:
        raise Unsupported(f"{layer.input_bits}-bit activations (the proof covers 1-bit ones)")
    if layer.output == "threshold" and layer.output_bits != 1:
        raise Unsupported(f"{layer.output_bits}-bit outputs (the proof covers 1-bit ones)")
    bits = layer.input_bits
    if layer.input == "uint":
        a = [({j * bits + b: 1 << b for b in range(bits)}, 0) for j in range(layer.in_features)]
    else:
        a = [({j: 2}, -1) for j in range(layer.in_features)]
    w = layer.weights()
    forms = []
    for o in range(layer.out_features):
        acc = _const(0)
        for j in range(layer.in_features):
            if int(w[o, j]):
                acc = _add(acc, a[j], int(w[o, j]))
        if layer.output == "scores":
            forms.append(_add(acc, _const(int(layer.bias[o]))))
        else:
            t = int(layer.threshold.reshape(layer.out_features, -1)[o, 0])
            forms.append(_add(acc, _const(-t)) if layer.direction[o] > 0 else _add(_const(t), acc, -1))
    return ("scores" if layer.output == "scores" else "threshold"), forms


def _input_values(layer, assignment):
    bits = layer.input_bits
    return [sum(assignment.get(j * bits + b, 0) << b for b in range(bits)) for j in range(layer.in_features)]


def prove_layer(layer, rtl_dir, module, score_width):
    """Prove RTL module ``module`` equal to ``layer`` for every input.

    Returns ``{"layer", "method": "symbolic", "result": "proven" |
    "counterexample" | "unproven", "seconds", "weight_bits", "neurons",
    "equivalent_thresholds", "counterexample": [x_j, ...] or None, "neuron",
    "reason"}``. ``equivalent_thresholds``: neurons whose RTL threshold
    differs from the artifact's in its constant but not in its function (it
    lies in a gap no input reaches). A counterexample is confirmed by
    evaluating the netlist on it concretely against the artifact's integer
    arithmetic; where the affine evaluation stops at a word that may wrap,
    that word's extreme inputs are tried the same way.
    """
    t0 = time.perf_counter()
    rtl_dir = Path(rtl_dir).resolve()
    rtl = read_manifest(rtl_dir)
    result = {"layer": layer.name, "method": "symbolic", "result": None, "seconds": None,
              "weight_bits": int(layer.nbits.astype(int).sum()), "neurons": layer.out_features,
              "equivalent_thresholds": 0, "counterexample": None, "neuron": None, "reason": None}

    def done(res, reason=None, neuron=None, assignment=None):
        result.update(result=res, reason=reason, neuron=neuron,
                      counterexample=None if assignment is None else _input_values(layer, assignment),
                      seconds=round(time.perf_counter() - t0, 2))
        return result

    try:
        kind, ref = reference_forms(layer)
    except Unsupported as exc:
        return done("unproven", str(exc))
    mod = _netlist_json(rtl_dir, [*rtl["sources"], *rtl.get("sim_sources", [])], module, rtl_dir / "equiv")
    n_vars = layer.in_features * layer.input_bits
    width = 1 if kind == "threshold" else score_width
    inputs = [p for p, spec in mod["ports"].items() if spec["direction"] == "input"]
    x_port = "x" if "x" in inputs else inputs[0] if len(inputs) == 1 else None
    if x_port is None:
        return done("unproven", f"{module} has input ports {inputs}, not one x port")
    for port, n in ((x_port, n_vars), ("y", width * layer.out_features)):
        got = len(mod["ports"].get(port, {}).get("bits", []))
        if got != n:
            return done("unproven", f"{module}'s port {port} has {got} bits, the layer needs {n}")
    port_bits = mod["ports"][x_port]["bits"]
    var_of = list(range(n_vars))
    if x_port != "x":
        # Amaranth named the port after the signal driving it (a deserializer's buffer, in its own
        # order) and kept the layer's input as the internal wire x: a permutation of the port's bits
        x_bits = mod.get("netnames", {}).get("x", {}).get("bits", [])
        where = {b: j for j, b in enumerate(x_bits)}
        if len(x_bits) != n_vars or sorted(where.get(b, -1) for b in port_bits) != var_of:
            return done("unproven", f"{module}'s input port {x_port} is not a permutation of its x wire")
        var_of = [where[b] for b in port_bits]

    def differs(assignment):
        """The neuron on which the netlist, evaluated concretely at ``assignment``, differs from the artifact."""
        bits = sum(assignment.get(var_of[k], 0) << k for k in range(n_vars))
        y = evaluate(mod, {x_port: bits})["y"]
        want = _reference_outputs(layer, _input_values(layer, assignment))
        for o, w in enumerate(want):
            got = (y >> (o * width)) & ((1 << width) - 1)
            if (_signed_of(got, width) if kind == "scores" else got) != w:
                return o
        return None

    def confirmed(o, reason, assignment):
        bad = differs(assignment)
        if bad is None:
            raise AssertionError(f"layer {layer.name} neuron {o}: the symbolic counterexample does not "
                                 f"differ when evaluated")
        return done("counterexample", reason if bad == o else f"neuron {bad} differs", bad, assignment)

    def unproven(reason, o, word=None):
        if word is not None:       # where the value may wrap, try the inputs that take it furthest
            for high in (True, False):
                x = {v: int((a > 0) == high) for v, a in word.form[0].items()}
                bad = differs(x)
                if bad is not None:
                    return done("counterexample", f"neuron {bad} differs where {word.cell}'s result wraps "
                                                  f"({reason})", bad, x)
        return done("unproven", reason, o)

    try:
        outs = netlist_forms(mod, {x_port: var_of})["y"]
    except Unsupported as exc:
        return unproven(str(exc), None, exc.word)
    verdict = judge_outputs(layer, kind, ref, outs, width, module, n_vars)
    if verdict[0] == "counterexample":
        return confirmed(*verdict[1:])
    if verdict[0] == "unproven":
        return unproven(*verdict[1:])
    result["equivalent_thresholds"] = verdict[1]
    return done("proven")


def judge_outputs(layer, kind, ref, outs, width, module, n_vars=None):
    """Compare the output bits ``outs`` (``width`` per neuron) of ``module``
    with the artifact's forms ``ref``. Returns ``("proven", equivalent
    thresholds)``, ``("counterexample", neuron, reason, {var: bit})`` or
    ``("unproven", reason, neuron, word or None)``. ``n_vars``: where given,
    a form over any other variable (an earlier input, a register's unknown
    state) is not the layer's function of this input: unproven."""
    def foreign(form):
        return n_vars is not None and any(v >= n_vars or v < 0 for v in form[0])

    equivalent = 0
    for o, form in enumerate(ref):
        bits = outs[o * width:(o + 1) * width]
        if kind == "scores":
            try:
                got = _read(bits, True, f"score {o} of {module}")
            except Unsupported as exc:
                return "unproven", str(exc), o, exc.word
            if foreign(got):
                return "unproven", (f"score {o} of {module} depends on more than this input (an earlier "
                                    f"input or a register's state)"), o, None
            diff = _add(got, form, -1)
            if diff[0] or diff[1]:   # distinct affine forms over bits differ somewhere; this is one place
                x = {} if diff[1] else {next(iter(diff[0])): 1}
                return "counterexample", o, (f"score {o} is {_show(got)} in the RTL and {_show(form)} in "
                                             f"the artifact"), x
            continue
        bit = _as_boolean(bits[0])
        if bit[0] == "u":
            return "unproven", bit[1], o, bit[2] if len(bit) > 2 else None
        if bit[0] == "c":
            bit = ("t", _const(0 if bit[1] else -1))
        elif bit[0] == "b":   # a 0/1 form f: 1 iff f - 1 >= 0
            bit = ("t", _add(bit[1], _const(-1)))
        if foreign(bit[1]):
            return "unproven", (f"neuron {o} of {module} depends on more than this input (an earlier "
                                f"input or a register's state)"), o, None
        try:
            verdict, detail = compare_threshold(bit[1], form)
        except Unsupported as exc:
            return "unproven", str(exc), o, None
        if verdict == "counterexample":
            return "counterexample", o, f"neuron {o} fires on a different set of inputs", detail
        if verdict == "unproven":
            return "unproven", detail, o, None
        if _normalize(bit[1]) != _normalize(form):
            equivalent += 1
    return "proven", equivalent


def _reference_outputs(layer, values):
    """The artifact's outputs for one fan-in vector: fire bits or scores (Python ints)."""
    w = layer.weights()
    acc = [sum(int(w[o, j]) * values[j] if layer.input == "uint" else int(w[o, j]) * (2 * values[j] - 1)
               for j in range(layer.in_features)) for o in range(layer.out_features)]
    if layer.output == "scores":
        return [a + int(b) for a, b in zip(acc, layer.bias)]
    thr = layer.threshold.reshape(layer.out_features, -1)[:, 0]
    return [int(a >= int(t)) if d > 0 else int(a <= int(t)) for a, t, d in zip(acc, thr, layer.direction)]


def _at(form, x):
    """``form`` evaluated at the assignment ``x`` ({var: bit}, others 0)."""
    return form[1] + sum(a * x.get(v, 0) for v, a in form[0].items())


def _wrap(value, width):
    """``value`` as a ``width``-bit two's complement port reads it."""
    value &= (1 << width) - 1
    return value - (1 << width) if value >> (width - 1) else value


def _show(form, limit=4):
    terms = [f"{a:+d}*x{v}" for v, a in sorted(form[0].items())[:limit]]
    more = len(form[0]) - limit
    return " ".join(terms + ([f"... ({more} more)"] if more > 0 else []) + [f"{form[1]:+d}"])
