"""Symbolic proof of a clocked layer: a folded layer's stream, a pipelined datapath.

:mod:`hwgen.tools.symbolic` proves a combinational layer by evaluating its
netlist once over affine forms of the input bits. A folded layer computes
its neurons over many clocks (weights read from ROM word by word, partial
sums accumulated), a pipelined one through registers; neither is a single
combinational function. This proof *simulates* the layer's word-level
netlist (Yosys ``proc; flatten``) clock by clock, with

* the **control** concrete: the handshake inputs follow a schedule, so
  counters, ROM addresses, multiplexer selects and register enables are
  constants, and ROM words are their contents;
* the **data** symbolic: the input payload of the inference under test is
  the variables ``x_i`` of :mod:`hwgen.tools.symbolic`, every other input
  (earlier and later inferences, the payload while no input is offered) is
  a fresh variable of its own, and registers hold affine forms or
  thresholds of them. Every cell is evaluated exactly as the combinational
  proof does (the same overflow-freedom check at every read).

A control signal that depends on data (a handshake output, a select, an
enable or an address that is not a constant) stops the proof: *unproven*,
the cell named. The outputs of the inference under test are then judged as
the combinational proof judges them (:func:`hwgen.tools.symbolic.judge_outputs`):
each must be the artifact's neuron over *this* input's variables only.

**Every inference, by induction** (the full-rate schedule: an input always
offered, the output always taken). The first inference after reset is
proven from the reset state. Then the states at two consecutive offers
(the first clock an input is offered), once the pipeline holds as many
inferences at each, are compared; the register and memory bits that are
the same constant in both are kept, all others become free variables (any
value). From that generalized state the next inference is proven again,
and the state at the offer after it must again hold those constants, with
the same number of inferences in flight. Every state at an offer is then
in that set (true at the first, and kept by every step), so every
inference's outputs are proven, whatever the earlier inputs were.

**Backpressure** is checked on a few seeded random schedules (inputs
offered and outputs taken with probability 1/2), each proving the first
three inferences after reset for every input. That is a bounded check, not
an induction: say so where it is reported.

A counterexample is re-run concretely (the same simulation on constants)
from reset and must differ from the artifact there, or the result is
unproven.
"""
import random
import time
from pathlib import Path

from ..core.manifest import read_manifest
from .symbolic import (Unsupported, _concrete_cell, _eval_cell, _input_values, _netlist_json, _param,
                       _reference_outputs, _signed_of, _var, judge_outputs, reference_forms)

__all__ = ["Machine", "prove_clocked", "STALL_SCHEDULES", "STALL_INFERENCES"]

#: seeded random backpressure schedules checked after the full-rate proof
STALL_SCHEDULES = 2
#: inferences proven after reset on each stall schedule
STALL_INFERENCES = 3
#: the generalized state is widened at most this many times before giving up
_WIDEN_ROUNDS = 4
#: random concrete runs tried where the proof stops short, for a counterexample
_SEARCH_RUNS = 32

_REGISTERS = {"$dff", "$dffe"}
_READS = {"$memrd", "$memrd_v2"}
_WRITES = {"$memwr", "$memwr_v2"}
_IGNORED = {"$scopeinfo", "$meminit", "$meminit_v2"}
#: cells whose result may not depend on every operand bit (a constant mask, a shift)
_PASS_THROUGH = {"$and", "$or", "$xor", "$xnor", "$not", "$pos", "$shl", "$sshl", "$shr", "$sshr"}

_JUNK, _STATE = 1 << 40, 1 << 41     # variable numbers of other inputs and of free register bits


def _constant(bits):
    """The unsigned integer of ``bits`` (LSB first) if all are constants, else None."""
    n = 0
    for k, b in enumerate(bits):
        if b[0] != "c":
            return None
        n |= b[1] << k
    return n


def _literal(b):
    if b == "1":
        return ("c", 1)
    if b == "0":
        return ("c", 0)
    return ("u", f"an undefined bit ({b!r})")


class State:
    """Register bits ``{bit id: bit}`` and memory words ``{memid: {address: (bit, ...)}}``."""
    __slots__ = ("regs", "mems")

    def __init__(self, regs, mems):
        self.regs, self.mems = regs, mems


class Machine:
    """A clocked module's word-level netlist (Yosys JSON), simulated one clock
    at a time on bits of :mod:`hwgen.tools.symbolic` (constants or affine
    data): :meth:`evaluate` the combinational cells, then :meth:`clock`."""

    def __init__(self, mod, where):
        self.mod, self.where = mod, where
        cells = mod.get("cells", {})
        self.registers, self.writes, comb = [], [], {}
        self.init_mems, clocks = {}, set()
        for name in sorted(cells):
            cell = cells[name]
            kind, conn = cell["type"], cell["connections"]
            if kind in _REGISTERS:
                if not _param(cell, "CLK_POLARITY", 1) or (kind == "$dffe" and not _param(cell, "EN_POLARITY", 1)):
                    raise Unsupported(f"{where}: register {name} is clocked or enabled on a falling level")
                clocks.add(tuple(map(str, conn["CLK"])))
                self.registers.append((name, conn["D"], conn["Q"], conn.get("EN", [None])[0]))
            elif kind in _WRITES:
                clocks.add(tuple(map(str, conn["CLK"])))
                if not _param(cell, "CLK_ENABLE", 1):
                    raise Unsupported(f"{where}: memory write {name} is not clocked")
                self.writes.append((cell["parameters"]["MEMID"], conn))
            elif kind in ("$meminit", "$meminit_v2"):
                self._init_memory(cell)
            elif kind in _READS:
                if _param(cell, "CLK_ENABLE"):
                    raise Unsupported(f"{where}: memory read {name} is clocked (hwgen's ROMs read asynchronously)")
                comb[name] = cell
            elif kind in _IGNORED:
                continue
            elif kind.startswith("$") and "Y" in conn:
                comb[name] = cell
            else:
                raise Unsupported(f"{where}: cell {name} ({kind}) is outside what the proof simulates")
        if len(clocks) > 1:
            raise Unsupported(f"{where}: registers on {len(clocks)} different clocks")
        self.order = self._order(comb)
        self.cells = comb
        self.ports = mod["ports"]
        self.reg_bits = [q for _, _, qs, _ in self.registers for q in qs if not isinstance(q, str)]

    def _init_memory(self, cell):
        memid = cell["parameters"]["MEMID"]
        width, words = _param(cell, "WIDTH"), _param(cell, "WORDS", 1)
        addr = _constant([_literal(b) for b in cell["connections"]["ADDR"]])
        data = [_literal(b) for b in cell["connections"]["DATA"]]
        if addr is None:
            raise Unsupported(f"{self.where}: memory {memid}'s contents are not constant")
        mem = self.init_mems.setdefault(memid, {})
        for k in range(words):
            mem[addr + k] = tuple(data[k * width:(k + 1) * width])

    def _order(self, comb):
        driven = {}
        for name, cell in comb.items():
            out = "DATA" if cell["type"] in _READS else "Y"
            for b in cell["connections"][out]:
                if not isinstance(b, str):
                    driven[b] = name
        deps = {}
        for name, cell in comb.items():
            out = "DATA" if cell["type"] in _READS else "Y"
            deps[name] = {driven[b] for p, bits in cell["connections"].items() if p != out
                          for b in bits if not isinstance(b, str) and b in driven}
        order, done, visiting = [], set(), set()
        for start in sorted(comb):
            stack = [(start, False)]
            while stack:
                n, expanded = stack.pop()
                if n in done:
                    continue
                if expanded:
                    visiting.discard(n)
                    done.add(n)
                    order.append(n)
                    continue
                if n in visiting:
                    raise Unsupported(f"{self.where}: a combinational loop through cell {n}")
                visiting.add(n)
                stack.append((n, True))
                stack.extend((d, False) for d in sorted(deps[n]) if d not in done)
        return order

    def reset_state(self):
        """The registers' initial values (Yosys ``init`` attributes) and the memories' contents."""
        regs = {b: ("u", "a register bit with no initial value") for b in self.reg_bits}
        for name, spec in self.mod.get("netnames", {}).items():
            init = spec.get("attributes", {}).get("init")
            if isinstance(init, str) and set(init) <= {"0", "1", "x"}:
                for k, b in enumerate(spec["bits"]):
                    if b in regs and k < len(init) and init[-1 - k] in "01":
                        regs[b] = ("c", int(init[-1 - k]))
        return State(regs, {m: dict(words) for m, words in self.init_mems.items()})

    def evaluate(self, state, inputs):
        """The value of every bit this clock: ``inputs`` ``{port: [bit, ...]}``."""
        val = dict(state.regs)
        for port, bits in inputs.items():
            for bid, b in zip(self.ports[port]["bits"], bits):
                val[bid] = b

        def bit_of(b):
            if isinstance(b, str):
                return _literal(b)
            v = val.get(b)
            return v if v is not None else ("u", "a bit driven by nothing")

        for name in self.order:
            cell = self.cells[name]
            kind, conn = cell["type"], cell["connections"]
            out_port = "DATA" if kind in _READS else "Y"
            out = self._cell(name, cell, kind, conn, bit_of, state)
            for b, v in zip(conn[out_port], out):
                if not isinstance(b, str):
                    val[b] = v
        return val

    def _cell(self, name, cell, kind, conn, bit_of, state):
        where = f"cell {name} ({kind})"
        if kind in _READS:
            width = len(conn["DATA"])
            addr = _constant([bit_of(b) for b in conn["ADDR"]])
            memid = cell["parameters"]["MEMID"]
            if addr is None:
                return [("u", f"{where} reads memory {memid} at an address that depends on data")] * width
            word = state.mems.get(memid, {}).get(addr)
            return list(word) if word is not None else \
                [("u", f"{where} reads word {addr} of memory {memid}, which holds nothing")] * width
        ins = {p: [bit_of(b) for b in bits] for p, bits in conn.items()
               if cell.get("port_directions", {}).get(p) == "input"}
        width = len(conn["Y"])
        if all(b[0] == "c" for bits in ins.values() for b in bits):
            return self._concrete(cell, kind, conn, ins, width, where)
        if kind == "$mux":
            s = ins["S"][0]
            if s[0] == "c":
                return ins["B"] if s[1] else ins["A"]
            if ins["A"] == ins["B"]:
                return ins["A"]
            return [("u", f"{where} selects by a condition that depends on data")] * width
        if kind == "$pmux":
            s = _constant(ins["S"])
            if s is None:
                return [("u", f"{where} selects by a condition that depends on data")] * width
            if s == 0:
                return ins["A"]
            k = (s & -s).bit_length() - 1
            return ins["B"][k * width:(k + 1) * width]
        if kind not in _PASS_THROUGH:   # an unknown operand: its own reason, not one more level of it
            for bits in ins.values():
                for b in bits:
                    if b[0] == "u":
                        return [b] * width
        try:
            return _eval_cell(kind, cell, conn, bit_of, width, where, name)
        except Unsupported as exc:
            return [("u", str(exc), exc.word)] * width

    def _concrete(self, cell, kind, conn, ins, width, where):
        if kind == "$pmux":
            s = _constant(ins["S"])
            if s == 0:
                return ins["A"]
            k = (s & -s).bit_length() - 1
            return ins["B"][k * width:(k + 1) * width]
        if kind == "$reduce_xor":
            return [("c", sum(b[1] for b in ins["A"]) & 1)] + [("c", 0)] * (width - 1)
        values = {}
        words = {id(conn[p]): _constant(bits) for p, bits in ins.items()}
        try:
            _concrete_cell(cell, lambda bits: words[id(bits)], values)
        except (Unsupported, KeyError):
            return [("u", f"{where}: a {kind} cell, which the simulation does not evaluate")] * width
        return [("c", values.get(b, 0)) if not isinstance(b, str) else _literal(b) for b in conn["Y"]]

    def clock(self, state, val):
        """The state after the clock edge, from this clock's values ``val``."""
        def bit_of(b):
            return _literal(b) if isinstance(b, str) else val.get(b, ("u", "a bit driven by nothing"))

        regs = {}
        for name, d, q, en in self.registers:
            new = [bit_of(b) for b in d]
            if en is not None:
                e = bit_of(en)
                old = [state.regs[b] for b in q]
                if e[0] != "c":
                    new = new if new == old else \
                        [("u", f"register {name} loads on an enable that depends on data")] * len(q)
                elif not e[1]:
                    new = old
            for b, v in zip(q, new):
                if not isinstance(b, str):
                    regs[b] = v
        mems = state.mems
        if self.writes:
            mems = {m: dict(words) for m, words in state.mems.items()}
            for memid, conn in self.writes:
                en = [bit_of(b) for b in conn["EN"]]
                if all(e == ("c", 0) for e in en):
                    continue
                addr = _constant([bit_of(b) for b in conn["ADDR"]])
                if addr is None or any(e[0] != "c" for e in en):
                    mems[memid] = {}     # every later read of it is then unknown, and says so
                    continue
                data = [bit_of(b) for b in conn["DATA"]]
                mem = mems.setdefault(memid, {})
                old = mem.get(addr, tuple(("u", f"word {addr} of memory {memid}, never written") for _ in data))
                mem[addr] = tuple(d if e[1] else o for d, e, o in zip(data, en, old))
        return State(regs, mems)


# --------------------------------------------------------------------------- the environment

class _Timeout(Exception):
    """The proof ran past its time limit."""


class _Schedule:
    """When an input is offered (or a datapath advances) and when the output is taken."""

    def __init__(self, seed=None):
        self.rng = None if seed is None else random.Random(seed)

    def offer(self):
        return self.rng is None or self.rng.random() < 0.5

    def take(self):
        return self.rng is None or self.rng.random() < 0.5


class _Port:
    """How the module meets its inputs and outputs: a valid/ready stream
    (a folded layer) or a datapath ``x`` -> ``y`` advanced by ``advance``
    (a pipelined one), ``latency`` advances deep."""

    def __init__(self, machine, n_vars, n_out, latency):
        ports = machine.ports
        self.machine, self.latency = machine, latency
        self.stream = "i__valid" in ports
        handshake = {"clk", "rst", "advance", "i__valid", "o__ready"}
        inputs = [p for p, spec in ports.items() if spec["direction"] == "input" and p not in handshake]
        if len(inputs) != 1:
            raise Unsupported(f"the module has input ports {sorted(inputs)}, not one payload port")
        self.x, wire = inputs[0], ("i__payload" if self.stream else "x")
        self.y = "o__payload" if self.stream else "y"
        need = {self.x: n_vars, self.y: n_out}
        if self.stream:
            need.update(i__valid=1, i__ready=1, o__valid=1, o__ready=1)
        for port, n in need.items():
            got = len(ports.get(port, {}).get("bits", []))
            if got != n:
                raise Unsupported(f"port {port} has {got} bits, the layer needs {n}")
        self.order = list(range(n_vars))     # the variable each bit of the payload port carries
        if self.x != wire:
            # Amaranth named the port after the signal driving it (a buffer, in its own order)
            # and kept the layer's input as the internal wire: a permutation of the port's bits
            bits = machine.mod.get("netnames", {}).get(wire, {}).get("bits", [])
            where = {b: j for j, b in enumerate(bits)}
            port_bits = ports[self.x]["bits"]
            if len(bits) != n_vars or sorted(where.get(b, -1) for b in port_bits) != self.order:
                raise Unsupported(f"the input port {self.x} is not a permutation of the {wire} wire")
            self.order = [where[b] for b in port_bits]
        self.fixed = {p: [("c", 0)] * len(ports[p]["bits"]) for p in ("clk", "rst") if p in ports}
        self.advance = "advance" in ports
        self.deadline = None     # time.monotonic() past which run() raises _Timeout

    def payload(self, by_var):
        """The payload port's bits for the input bits ``by_var`` (in the layer's variable order)."""
        return [by_var[j] for j in self.order]

    def _read(self, val, port):
        return [_literal(b) if isinstance(b, str) else val.get(b, ("u", f"output {port} is driven by nothing"))
                for b in self.machine.ports[port]["bits"]]

    def _control(self, val, port):
        b = self._read(val, port)[0]
        if b[0] != "c":
            raise Unsupported(f"the handshake output {port.replace('__', '.')} depends on data")
        return b[1]

    def run(self, state, feed, want, schedule, junk, max_cycles, watch=None, pending=(), flight=0):
        """Simulate from ``state``, offering the payloads ``feed`` in order,
        until ``want`` outputs were taken. Returns ``(outputs, offers)``: the
        output payloads, and per input offered ``(state at the start of the
        clock it is first offered in, inferences in flight then, the
        datapath's advance counts of those)``; ``watch(k, offer)`` is called
        at offer ``k`` and may stop the run by returning True. An inference
        is delimited by its first offer, not its transfer: a folded layer
        with a held input works on the payload from the first clock it is
        offered. ``pending``: a datapath's in-flight advance counts at the
        start (an offer's third item); ``flight``: a stream's inferences in flight at the start."""
        m, outputs, offers = self.machine, [], []
        taken, offering, pending = 0, False, list(pending)
        for _ in range(max_cycles):
            if self.deadline is not None and time.monotonic() > self.deadline:
                raise _Timeout()
            inputs = dict(self.fixed)
            if self.stream:
                if not offering and taken < len(feed) and schedule.offer():
                    offering = True
                    offers.append((state, flight + taken - len(outputs), ()))
                    if watch and watch(len(offers) - 1, offers[-1]):
                        return outputs, offers
                ready = schedule.take()
                inputs.update(i__valid=[("c", int(offering))], o__ready=[("c", int(ready))])
                inputs[self.x] = self.payload(feed[taken]) if offering else junk(len(self.order))
                val = m.evaluate(state, inputs)
                i_ready, o_valid = self._control(val, "i__ready"), self._control(val, "o__valid")
                if offering and i_ready:
                    taken, offering = taken + 1, False
                if o_valid and ready:
                    outputs.append(self._read(val, self.y))
            else:
                go = schedule.offer() if self.advance else True
                if self.advance:
                    inputs["advance"] = [("c", int(go))]
                new = go and taken < len(feed)
                if new:
                    offers.append((state, len(pending), tuple(pending)))
                    if watch and watch(len(offers) - 1, offers[-1]):
                        return outputs, offers
                inputs[self.x] = self.payload(feed[taken]) if new else junk(len(self.order))
                val = m.evaluate(state, inputs)
                if new:
                    pending.append(0)
                    taken += 1
                while pending and pending[0] == self.latency:
                    outputs.append(self._read(val, self.y))
                    pending.pop(0)
                if go:
                    pending = [k + 1 for k in pending]
            if len(outputs) >= want:
                return outputs, offers
            state = m.clock(state, val)
        raise Unsupported(f"no output after {max_cycles:,} clocks")

    def after_reset(self):
        m = self.machine
        state = m.reset_state()
        inputs = {p: [("c", 0)] * len(s["bits"]) for p, s in m.ports.items() if s["direction"] == "input"}
        if "rst" in inputs:
            inputs["rst"] = [("c", 1)]
        return m.clock(state, m.evaluate(state, inputs))


def _fresh(base):
    counter = [base]

    def junk(n):
        out = [("b", _var(counter[0] + k)) for k in range(n)]
        counter[0] += n
        return out
    return junk


def _zeros(n):
    return [("c", 0)] * n


def _generalize(state, other, fresh):
    """``state`` with every bit that is not the same constant in ``other`` made free."""
    regs = {b: (v if v[0] == "c" and other.regs.get(b) == v else fresh(1)[0]) for b, v in state.regs.items()}
    mems = {}
    for memid, words in state.mems.items():
        theirs = other.mems.get(memid, {})
        mems[memid] = {a: tuple(v if v[0] == "c" and a in theirs and theirs[a][k] == v else fresh(1)[0]
                                for k, v in enumerate(word)) for a, word in words.items()}
    return State(regs, mems)


def _keeps(general, state):
    """The bits constant in ``general`` that ``state`` does not hold as the same constant."""
    lost = [b for b, v in general.regs.items() if v[0] == "c" and state.regs.get(b) != v]
    for memid, words in general.mems.items():
        theirs = state.mems.get(memid, {})
        lost += [(memid, a) for a, word in words.items()
                 if any(v[0] == "c" and (a not in theirs or theirs[a][k] != v) for k, v in enumerate(word))]
    return lost


# --------------------------------------------------------------------------- the proof

def prove_clocked(layer, rtl_dir, module, score_width, latency=0, cycles=None, stall_schedules=STALL_SCHEDULES,
                  timeout_s=None):
    """Prove the clocked module ``module`` (a folded layer's stream, or a
    pipelined datapath ``latency`` advances deep) equal to ``layer`` for
    every input: every inference on the full-rate schedule (by induction),
    and the first :data:`STALL_INFERENCES` after reset on
    ``stall_schedules`` random backpressure schedules. ``cycles``: the
    layer's clocks per inference, which bounds the simulation. Past
    ``timeout_s`` seconds the result is "timeout" (not proven).

    Returns :func:`hwgen.tools.symbolic.prove_layer`'s record, with
    ``method`` "symbolic-sequential" and ``schedules`` saying what was
    covered.
    """
    t0 = time.perf_counter()
    rtl_dir = Path(rtl_dir).resolve()
    rtl = read_manifest(rtl_dir)
    result = {"layer": layer.name, "method": "symbolic-sequential", "result": None, "seconds": None,
              "weight_bits": int(layer.nbits.astype(int).sum()), "neurons": layer.out_features,
              "equivalent_thresholds": 0, "counterexample": None, "neuron": None, "reason": None,
              "schedules": None}

    def record(res, reason=None, neuron=None, assignment=None):
        result.update(result=res, reason=reason, neuron=neuron,
                      counterexample=None if assignment is None else _input_values(layer, assignment),
                      seconds=round(time.perf_counter() - t0, 2))
        return result

    try:
        kind, ref = reference_forms(layer)
    except Unsupported as exc:
        return record("unproven", str(exc))
    mod = _netlist_json(rtl_dir, [*rtl["sources"], *rtl.get("sim_sources", [])], module, rtl_dir / "equiv")
    n_vars = layer.in_features * layer.input_bits
    width = 1 if kind == "threshold" else score_width
    try:
        machine = Machine(mod, module)
        port = _Port(machine, n_vars, width * layer.out_features, latency)
    except Unsupported as exc:
        return record("unproven", f"{module}: {exc}")
    if timeout_s is not None:
        port.deadline = time.monotonic() + timeout_s
    own = [("b", _var(j)) for j in range(n_vars)]
    budget = 64 + 8 * (int(cycles or 0) + latency + 2)

    def inputs(test, count, base):
        """``count`` payloads, the ``test``-th over the variables under test, the others fresh."""
        fresh = _fresh(base)
        return [own if k == test else fresh(n_vars) for k in range(count)]

    def concrete_run(assignments, seed):
        """The first neuron on which each inference of a concrete run from reset
        differs from the artifact (None where it agrees), or None where the run fails."""
        feed = [[("c", x.get(j, 0)) for j in range(n_vars)] for x in assignments]
        try:
            outs, _ = port.run(port.after_reset(), feed, len(feed), _Schedule(seed), _zeros,
                               budget * (len(feed) + 1) * (1 if seed is None else 4))
        except (Unsupported, _Timeout):
            return None
        wrong = []
        for bits, x in zip(outs, assignments):
            want = _reference_outputs(layer, _input_values(layer, x))
            bad = None
            for o, w in enumerate(want):
                word = _constant(bits[o * width:(o + 1) * width])
                if word is None or (_signed_of(word, width) if kind == "scores" else word) != w:
                    bad = o
                    break
            wrong.append(bad)
        return wrong

    def concrete_differs(assignment, test, seed):
        """Whether the concrete run from reset differs from the artifact at inference ``test``."""
        wrong = concrete_run([{}] * test + [assignment], seed)
        return None if wrong is None else wrong[test]

    def search(reason):
        """Where the proof stops short, random concrete runs from reset (a few
        inferences each, at full rate and with stalls) may still show that the
        layer is wrong: a counterexample is then reported instead."""
        rng = random.Random(0)
        for trial in range(_SEARCH_RUNS):
            xs = [{j: rng.randrange(2) for j in range(n_vars)} for _ in range(STALL_INFERENCES)]
            wrong = concrete_run(xs, None if trial % 2 == 0 else trial)
            for k, o in enumerate(wrong or []):
                if o is not None:
                    return record("counterexample", f"{reason}; a concrete run from reset differs at inference {k} "
                                                  f"(after {k} earlier random inputs, "
                                                  f"{'full rate' if trial % 2 == 0 else 'with stalls'})",
                                o, xs[k])
        return None

    def done(res, reason=None, neuron=None, assignment=None):
        """:func:`record`, where an unproven result first gets the :func:`search`."""
        if res == "unproven":
            found = search(reason)
            if found is not None:
                return found
        return record(res, reason, neuron, assignment)

    def verdict(outs, test, seed, what):
        """Judge output ``test``; returns a finished record, or None where it is proven."""
        v = judge_outputs(layer, kind, ref, outs, width, module, n_vars)
        if v[0] == "proven":
            result["equivalent_thresholds"] = max(result["equivalent_thresholds"], v[1])
            return None
        if v[0] == "counterexample":
            _, o, reason, x = v
            for t, s in ((test, seed), (0, None), (1, None)):
                bad = concrete_differs(x, t, s)
                if bad is not None:
                    return done("counterexample", f"{reason} ({what})", bad, x)
            return done("unproven", f"{reason} ({what}), but the concrete run from reset does not differ "
                                    f"on that input", o)
        _, reason, o, word = v
        if word is not None:          # where a value may wrap, try the inputs that take it furthest
            for high in (True, False):
                x = {var: int((a > 0) == high) for var, a in word.form[0].items() if 0 <= var < n_vars}
                bad = concrete_differs(x, test, seed)
                if bad is not None:
                    return done("counterexample", f"neuron {bad} differs at inference {test} after reset, "
                                                  f"where {word.cell}'s result wraps ({reason}; {what})", bad, x)
        return done("unproven", f"{reason} ({what})", o)

    try:
        # the first inference after reset, and the states at the transfers of the next two
        outs, _ = port.run(port.after_reset(), inputs(0, latency + 2, _JUNK), 1, _Schedule(), _fresh(2 * _JUNK),
                           budget * (latency + 2))
        bad = verdict(outs[0], 0, None, "the first inference after reset")
        if bad:
            return bad
        # the pipeline fills: the first two consecutive offers with as many inferences in flight
        offers = []

        def settled(k, offer):
            offers.append(offer)
            return k >= 2 and offers[-2][1] == offer[1]
        fill = latency + 4
        port.run(port.after_reset(), inputs(None, fill, _JUNK), fill + 1, _Schedule(), _fresh(2 * _JUNK),
                 budget * (fill + 2), settled)
        if len(offers) < 3 or offers[-2][1] != offers[-1][1]:
            return done("unproven", f"the inferences in flight at each offer on the full-rate schedule "
                                    f"({', '.join(str(o[1]) for o in offers[:8])} ...) do not settle")
        (s1, q1, pending), (s2, _, _) = offers[-2], offers[-1]
        fresh = _fresh(_STATE)
        general = _generalize(s1, s2, fresh)
        for _round in range(_WIDEN_ROUNDS):
            seen = []

            def watch(k, offer):
                seen.append(offer)
                return False
            # inference A (under test) first, then as many as needed to see its output and the next offer
            outs, offers2 = port.run(general, inputs(0, q1 + 2, _JUNK), q1 + 1, _Schedule(), _fresh(2 * _JUNK),
                                     budget * (q1 + 3), watch, pending, q1)
            if len(offers2) < 2:
                _, offers2 = port.run(general, inputs(0, q1 + 2, _JUNK), q1 + 3, _Schedule(), _fresh(2 * _JUNK),
                                      budget * (q1 + 4), lambda k, offer: k >= 1, pending, q1)
                if len(offers2) < 2:
                    return done("unproven", "no second input offered on the full-rate schedule")
            bad = verdict(outs[q1], q1, None, "every later inference, by induction over the full-rate schedule")
            if bad:
                return bad
            state, flight, counts = offers2[1]
            if flight != q1 or (counts and tuple(counts) != tuple(pending)):
                return done("unproven", f"{flight} inferences in flight at the next offer, {q1} before: "
                                        f"not periodic")
            if not _keeps(general, state):
                break
            general = _generalize(general, state, fresh)
        else:
            return done("unproven", f"the control state does not settle into a cycle on the full-rate "
                                    f"schedule within {_WIDEN_ROUNDS} widenings")
        # backpressure: bounded, from reset
        for seed in range(1, stall_schedules + 1):
            for test in range(STALL_INFERENCES):
                outs, _ = port.run(port.after_reset(), inputs(test, test + 1, _JUNK), test + 1, _Schedule(seed),
                                   _fresh(2 * _JUNK), budget * (test + 2) * 4)
                bad = verdict(outs[test], test, seed, f"inference {test} after reset on stall schedule {seed}")
                if bad:
                    return bad
    except Unsupported as exc:
        return done("unproven", f"{module}: {exc}", None)
    except _Timeout:
        return record("timeout", f"the clocked simulation ran past {timeout_s} s")
    result["schedules"] = (f"every inference at full rate (by induction); the first {STALL_INFERENCES} after "
                           f"reset on {stall_schedules} random stall schedules")
    return done("proven")
