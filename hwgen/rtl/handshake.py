"""A cycle-level model of the stream stages' valid/ready handshakes: where
the latency and the interval of a :class:`~hwgen.rtl.network.StreamNetwork`
come from.

Folded conv layers stall the pixel stream while their window datapath
works, so when an output appears depends on every stage's state, clock by
clock. Each stage's control (counters, busy flags, valid registers; never
the data) is mirrored here by a small model with the stage's exact cycle
behaviour:

* ``valid(i_valid)``: the stage's ``o.valid`` this cycle;
* ``ready(o_ready)``: its ``i.ready`` this cycle, given ``o.ready``;
* ``step(i_valid, o_ready)``: the clock edge.

:func:`simulate` drives a chain of them from an always-valid source into an
always-ready sink. The models are checked against the Amaranth simulation
of the hardware they mirror (tests/test_conv_rtl.py, tests/test_folded.py):
the first output exactly ``latency`` cycles after the input, then one every
``interval``.
"""

__all__ = ["Deserializer", "Fifo", "Folded", "FoldedConv", "Hold", "Pipe", "folded", "folded_conv",
           "kept_windows", "map_interval", "simulate"]


class Pipe:
    """A pipeline that advances when its output is empty or taken (``i.ready
    = ~o.valid | o.ready``): an accepted input's mark reaches ``o.valid``
    ``depth`` advancing clocks later. ``marks`` (cycled over accepted
    inputs) says which inputs produce an output: a conv layer's pixels that
    complete a pooling window."""

    def __init__(self, depth, marks=(True,)):
        self.regs, self.marks, self.k = [False] * depth, list(marks), 0

    def valid(self, i_valid=True):
        return self.regs[-1]

    def ready(self, o_ready):
        return not self.regs[-1] or o_ready

    def step(self, i_valid, o_ready):
        if self.ready(o_ready):
            mark = i_valid and self.marks[self.k]
            if i_valid:
                self.k = (self.k + 1) % len(self.marks)
            self.regs = [mark] + self.regs[:-1]


class Hold:
    """A stage that works ``depth`` clocks on an input its upstream holds
    (valid, not yet taken), then offers it with its result, taking it from
    upstream as it is taken downstream (``o.valid`` = ``i.valid`` and
    ``depth`` clocks seen; ``i.ready`` = ``depth`` clocks seen and
    ``o.ready``): :class:`hwgen.rtl.network.StreamNetwork`'s held argmax."""

    def __init__(self, depth):
        self.depth, self.count = depth, 0

    def valid(self, i_valid=True):
        return i_valid and self.count == self.depth

    def ready(self, o_ready):
        return self.count == self.depth and o_ready

    def step(self, i_valid, o_ready):
        if i_valid and self.ready(o_ready):
            self.count = 0
        elif i_valid and self.count < self.depth:
            self.count += 1


class Deserializer:
    """:class:`hwgen.rtl.conv.Deserializer`: the vector is valid the clock
    after the map's ``n``-th pixel."""

    def __init__(self, n):
        self.n, self.count, self.ov = n, 0, False

    def valid(self, i_valid=True):
        return self.ov

    def ready(self, o_ready):
        return not self.ov or o_ready

    def step(self, i_valid, o_ready):
        take = i_valid and self.ready(o_ready)
        if o_ready:
            self.ov = False
        if take:
            self.count += 1
            if self.count == self.n:
                self.count, self.ov = 0, True


class Fifo:
    """:class:`hwgen.rtl.conv.Fifo`: Amaranth's ``SyncFIFOBuffered`` of
    ``depth`` >= 2 entries (``depth - 1`` in memory, one in the output
    register), its streams read and written whenever valid and ready."""

    def __init__(self, depth):
        self.inner, self.level, self.ov = depth - 1, 0, False

    def valid(self, i_valid=True):
        return self.ov

    def ready(self, o_ready):
        return self.level != self.inner

    def step(self, i_valid, o_ready):
        write = i_valid and self.level != self.inner
        read = self.level != 0 and (not self.ov or o_ready)
        self.level += int(write) - int(read)
        if read:
            self.ov = True
        elif o_ready:
            self.ov = False


class Folded:
    """:class:`hwgen.rtl.folded.FoldedLayer` with schedule ``words``
    (``(fold, last)`` per ROM word), ``folds`` folds and ``depth`` adder-tree
    registers per lane: issue, the ROM word (S1), the trees, S2 (alpha,
    accumulate), S3 (compare), S4 (collect); the whole layer stops only when
    the last fold's result meets a full output register, which it fills as
    that register is taken."""

    def __init__(self, words, folds, depth, held_input=False):
        self.words, self.folds, self.held_input = list(words), folds, held_input
        self.busy, self.addr = False, 0
        self.pipe = [None] * (depth + 2)     # the word index at S1, in the trees, at S2
        self.v3 = self.v4 = None             # the fold whose last word is at S3 / S4
        self.ov = False

    def _run(self, o_ready):
        return not (self.v4 == self.folds - 1 and self.ov)

    def valid(self, i_valid=True):
        return self.ov

    def _last1(self):
        return self.pipe[0] == len(self.words) - 1

    def ready(self, o_ready):
        if self.held_input:
            return self._run(o_ready) and self._last1()
        return self._run(o_ready) and not self.busy

    def step(self, i_valid, o_ready):
        run = self._run(o_ready)
        if o_ready:
            self.ov = False
        if not run:
            if o_ready:     # the waiting result goes out as the held one is taken
                self.ov, self.v4 = True, None
            return
        if self.v4 == self.folds - 1:
            self.ov = True
        s2 = self.pipe[-1]
        self.v4 = self.v3
        self.v3 = self.words[s2][0] if s2 is not None and self.words[s2][1] else None
        if self.held_input:     # words issued while the input is offered; addr rests at 0
            issue = self.busy or (i_valid and not self._last1())
            self.pipe = [self.addr if issue else None] + self.pipe[:-1]
            if issue:
                self.busy = self.addr != len(self.words) - 1
                self.addr = self.addr + 1 if self.busy else 0
            return
        self.pipe = [self.addr if self.busy else None] + self.pipe[:-1]
        if i_valid and not self.busy:
            self.busy, self.addr = True, 0
        elif self.busy:
            self.busy = self.addr != len(self.words) - 1
            self.addr += 1


class FoldedConv:
    """:class:`hwgen.rtl.conv.ConvLayer` folded: pixels enter the line
    buffer while no window waits (``in_area`` per pixel of the map: it
    completes a window the pooling keeps); a waiting window goes to the
    :class:`Folded` datapath ``fold``; its results go to the pooling
    register, which emits a pixel where ``pool_emits`` (per computed window)
    says so."""

    def __init__(self, in_area, fold, pool_emits):
        self.in_area, self.fold, self.pool_emits = list(in_area), fold, list(pool_emits)
        self.pos, self.window, self.pending, self.ov = 0, 0, False, False

    def valid(self, i_valid=True):
        return self.ov

    def _take(self, o_ready):
        return self.pending and self.fold.ready(not self.ov or o_ready)

    def ready(self, o_ready):
        return not self.pending or self._take(o_ready)

    def step(self, i_valid, o_ready):
        fold_ready = not self.ov or o_ready
        take = self._take(o_ready)
        accept = i_valid and (not self.pending or take)
        consume = self.fold.valid() and fold_ready
        self.fold.step(self.pending, fold_ready)
        if o_ready:
            self.ov = False
        if consume:
            self.ov = self.pool_emits[self.window]
            self.window = (self.window + 1) % len(self.pool_emits)
        if accept:
            self.pending = self.in_area[self.pos]
            self.pos = (self.pos + 1) % len(self.in_area)
        elif take:
            self.pending = False


def folded(schedule, depth, held_input=False):
    """The :class:`Folded` model of a :class:`hwgen.rtl.folded.Schedule`
    whose lanes have ``depth`` adder-tree registers (``held_input``: see
    :class:`hwgen.rtl.folded.FoldedLayer`)."""
    entries = schedule.entries
    words = [(f, k + 1 == len(entries) or entries[k + 1][0] != f) for k, (f, *_) in enumerate(entries)]
    return Folded(words, schedule.folds, depth, held_input)


def kept_windows(layer):
    """A conv layer's input rows and columns whose pixel completes a window
    that the pooling keeps (those beyond ``pool * H''`` rows or ``pool *
    W''`` columns of conv outputs are dropped, as by ``MaxPool2d``)."""
    kh, kw = layer.kernel
    _, ho, wo = layer.out_shape
    p = layer.pool
    return range(kh - 1, kh - 1 + p * ho), range(kw - 1, kw - 1 + p * wo)


def folded_conv(layer, fold):
    """The :class:`FoldedConv` model of conv ``layer`` on the
    :class:`Folded` model ``fold``."""
    _, h, w = layer.in_shape
    p = layer.pool
    rows, cols = kept_windows(layer)
    in_area = [y in rows and x in cols for y in range(h) for x in range(w)]
    pool_emits = [r % p == p - 1 and c % p == p - 1 for r in range(len(rows)) for c in range(len(cols))]
    return FoldedConv(in_area, fold, pool_emits)


def map_interval(model, layer):
    """Clocks per map of a conv layer's ``model`` streaming on its own."""
    _, ho, wo = layer.out_shape
    out, _ = simulate([model], 3 * ho * wo)
    return out[-1] - out[2 * ho * wo - 1]


def simulate(models, outputs, limit=10_000_000):
    """Drive ``models`` (a chain, first to last) from a source that always
    offers an input into a sink that is always ready: the cycles (from 0,
    the first offer) at which the first ``outputs`` outputs appear, and the
    cycles at which the source's inputs were taken."""
    out, taken = [], []
    for t in range(limit):
        valid, i_valids = True, []
        for model in models:
            i_valids.append(valid)
            valid = model.valid(valid)
        if valid:
            out.append(t)
            if len(out) == outputs:
                return out, taken
        ready, o_readies = True, []
        for model in reversed(models):
            o_readies.append(ready)
            ready = model.ready(ready)
        if ready:
            taken.append(t)
        for model, i_valid, o_ready in zip(models, i_valids, reversed(o_readies)):
            model.step(i_valid, o_ready)
    raise RuntimeError(f"the stream model produced {len(out)} of {outputs} outputs in {limit} cycles")
