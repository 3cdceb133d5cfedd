"""Convolution hardware: pixel streams, a line buffer and a sliding window.

A feature map travels as a stream of pixels in raster order (row by row),
one pixel (all its channels) per transfer. :class:`ConvLayer` keeps the last
``(kh - 1) * W + kw`` pixels in a shift register, the *line buffer*: after
pixel ``(y, x)`` arrives, the window whose bottom-right corner it is sits at
fixed taps of that register, so one :class:`~hwgen.rtl.layer.LinearLayer`
(weights as constants: the bit-plane popcount or MAC datapath) computes all
output channels of one window per clock. Windows that wrap around a row edge
are computed too and dropped, so a layer takes ``H * W`` clocks per map.
Folded (``folding = (pe, simd)``), a layer computes only the windows its
pooling keeps, each on a :class:`~hwgen.rtl.folded.FoldedLayer` (weights in
ROM, several clocks per window): a window waits at the taps until the
datapath takes it, and the pixel stream waits with it. How long a map then
takes depends on the neighbours' handshakes: :mod:`hwgen.rtl.handshake`
models them cycle for cycle.

Max-pooling after the threshold is a logical OR of bits (``max`` on +-1).
The conv outputs of one pooling window arrive in ``p`` runs of ``p``
consecutive pixels, one run per conv row: the run's OR is kept in a
register, and the ORs of the windows of one row wait for the next row's in a
shift register of ``W'' = W' // p`` entries (a line buffer of the pooled
row). Conv rows and columns beyond ``p * W''`` (``p * H''``) are dropped, as
by ``torch.nn.MaxPool2d``.

A network with conv layers takes its input as this pixel stream, as a
camera or a line-buffered image source delivers it (storing or
multiplexing a whole image out of a vector would cost as much as a conv
layer: 5k iCE40 LUT4 for 28x28 pixels). :class:`Deserializer` gathers the
last conv layer's pixels into the flattened (channel-major) vector the
dense layers read (a shift register: the reordering is wiring).
"""
from functools import cached_property

from amaranth.hdl import Cat, Const, EnableInserter, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..errors import HwgenError
from . import handshake
from .arith import delayed
from .folded import FoldedLayer
from .layer import LinearLayer

__all__ = ["ConvLayer", "Deserializer", "Fifo", "UnrolledStage", "pixel_layout"]


def pixel_layout(bits, channels):
    """One pixel of a map on a stream: ``channels`` values of ``bits`` bits,
    channel k at bits ``[k*bits, (k+1)*bits)``."""
    return data.ArrayLayout(unsigned(bits), channels)


class Deserializer(wiring.Component):
    """The pixels of a ``[C, H, W]`` map of bits (raster order) in, the map
    flattened channel-major out, as one vector per map."""

    #: clocks from the map's last accepted pixel to the vector on ``o``
    latency = 1

    def __init__(self, shape):
        self.shape = tuple(shape)
        c, h, w = self.shape
        super().__init__({
            "i": In(stream.Signature(unsigned(c))),
            "o": Out(stream.Signature(pixel_layout(1, c * h * w))),
        })

    @property
    def interval(self):
        """Clocks per map: one per pixel."""
        _, h, w = self.shape
        return h * w

    def control(self):
        """The stage's handshakes, cycle for cycle (:mod:`hwgen.rtl.handshake`)."""
        return handshake.Deserializer(self.interval)

    def elaborate(self, platform):
        m = Module()
        c, h, w = self.shape
        n = h * w
        buf = Signal(n * c)       # pixel q at [q*c, (q+1)*c) once all n have arrived
        count = Signal(range(n))
        m.d.comb += [self.i.ready.eq(~self.o.valid | self.o.ready),
                     self.o.payload.eq(Cat(buf[q * c + k] for k in range(c) for q in range(n)))]
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += buf.eq(Cat(buf[c:], self.i.payload))
            with m.If(count == n - 1):
                m.d.sync += [count.eq(0), self.o.valid.eq(1)]
            with m.Else():
                m.d.sync += count.eq(count + 1)
        return m


class Fifo(wiring.Component):
    """A first-in first-out queue of ``depth`` payloads of ``shape`` between
    two streams (Amaranth's ``SyncFIFOBuffered``): it lets a folded conv
    layer take the pixels its upstream layer emits in bursts at its own
    pace. :class:`~hwgen.rtl.network.StreamNetwork` sizes it."""

    #: clocks from a payload written into an empty queue to it on ``o``
    latency = 2
    #: clocks per payload
    interval = 1

    def __init__(self, shape, depth):
        if depth < 2:
            raise ValueError(f"a FIFO between streams holds at least 2 entries, not {depth}")
        self.depth = int(depth)
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def control(self):
        """The queue's handshakes, cycle for cycle (:mod:`hwgen.rtl.handshake`)."""
        return handshake.Fifo(self.depth)

    def elaborate(self, platform):
        m = Module()
        m.submodules.queue = queue = SyncFIFOBuffered(width=len(Value.cast(self.i.payload)), depth=self.depth)
        m.d.comb += [queue.w_stream.payload.eq(self.i.payload), queue.w_stream.valid.eq(self.i.valid),
                     self.i.ready.eq(queue.w_stream.ready),
                     self.o.payload.eq(queue.r_stream.payload), self.o.valid.eq(queue.r_stream.valid),
                     queue.r_stream.ready.eq(self.o.ready)]
        return m


class UnrolledStage(wiring.Component):
    """A dense layer with constant weights (:class:`LinearLayer`) between
    streams: one vector per clock, the layer's pipeline and an output
    register advancing together when the output is empty or taken."""

    def __init__(self, layer, pipeline=0, datapath="planes", family="generic"):
        self._layer = layer
        self.datapath = LinearLayer(layer, pipeline, datapath, family)
        super().__init__({
            "i": In(stream.Signature(self.datapath.x.shape())),
            "o": Out(stream.Signature(self.datapath.y.shape())),
        })

    @property
    def layer(self):
        return self._layer

    @property
    def datapath_kind(self):
        return self.datapath.datapath_kind

    @property
    def latency(self):
        return self.datapath.latency + 1

    @property
    def interval(self):
        return 1

    def control(self):
        """The stage's handshakes, cycle for cycle (:mod:`hwgen.rtl.handshake`)."""
        return handshake.Pipe(self.latency)

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]
        m.submodules.datapath = dp = EnableInserter(advance)(self.datapath)
        m.d.comb += dp.x.eq(self.i.payload)
        valid = delayed(m, advance, self.i.valid, self.datapath.latency, "valid")
        with m.If(advance):
            m.d.sync += [self.o.payload.eq(dp.y), self.o.valid.eq(valid)]
        return m


class ConvLayer(wiring.Component):
    """One ``conv2d`` :class:`hwgen.core.artifact.Layer` (threshold, 1-bit
    outputs) over pixel streams: see the module docstring. ``pipeline = k >
    0`` registers the window datapath's adder trees every k levels.

    ``folding = (pe, simd)`` computes the windows on a :class:`FoldedLayer`
    instead (weights in ROM, ``pe`` x ``simd`` lanes, several clocks per
    window), and only the windows the pooling keeps: a window waits in the
    line buffer's taps until the datapath takes it, holding the pixel
    stream meanwhile, and the pooling counts the results itself.

    Members
    -------
    i : ``In(stream.Signature(ArrayLayout(unsigned(input_bits), C)))``, one
        input pixel per transfer, raster order.
    o : ``Out(stream.Signature(unsigned(out_channels)))``, one pooled output
        pixel per transfer (bit o = channel o fires), raster order.
    """

    def __init__(self, layer, pipeline=0, datapath="planes", folding=None, family="generic"):
        if layer.op != "conv2d":
            raise HwgenError(f"layer {layer.name}: ConvLayer takes conv2d layers, not {layer.op}")
        if layer.output != "threshold" or layer.output_bits != 1:
            raise HwgenError(f"layer {layer.name}: a conv layer in hardware must produce 1-bit "
                             f"activations")
        if layer.input == "binary" and layer.input_bits != 1:
            raise HwgenError(f"layer {layer.name}: conv layers read unsigned or 1-bit binary inputs")
        self._layer = layer
        if folding is None:
            self.datapath = LinearLayer(layer, pipeline, datapath, family)
        else:
            self.datapath = FoldedLayer(layer, *folding, pipeline, family)
            self.schedule = self.datapath.schedule
        super().__init__({
            "i": In(stream.Signature(pixel_layout(layer.input_bits, layer.in_shape[0]))),
            "o": Out(stream.Signature(unsigned(layer.out_features))),
        })

    @property
    def layer(self):
        return self._layer

    @property
    def folded(self):
        return isinstance(self.datapath, FoldedLayer)

    @property
    def datapath_kind(self):
        return self.datapath.datapath_kind

    @cached_property   # folded: a handshake simulation
    def latency(self):
        """Clocks from the pixel that completes a pooling window to that
        window's output pixel (no stalls)."""
        if not self.folded:
            return self.datapath.latency + 2
        emits = self.emits()
        out, taken = handshake.simulate([self.control()], 1)
        return out[0] - taken[emits.index(True)]

    @cached_property   # folded: a handshake simulation
    def interval(self):
        """Clocks per map when the layer streams on its own: one per input
        pixel, or more when a folded datapath keeps the pixels waiting."""
        _, h, w = self._layer.in_shape
        return handshake.map_interval(self.control(), self._layer) if self.folded else h * w

    def emits(self):
        """For each input pixel (raster order), whether it completes a pooled
        output pixel."""
        _, h, w = self._layer.in_shape
        p = self._layer.pool
        rows, cols = handshake.kept_windows(self._layer)
        return [y in rows and (y - rows.start) % p == p - 1 and x in cols and (x - cols.start) % p == p - 1
                for y in range(h) for x in range(w)]

    def control(self):
        """The layer's handshakes, cycle for cycle (:mod:`hwgen.rtl.handshake`)."""
        if not self.folded:
            return handshake.Pipe(self.latency, self.emits())
        return handshake.folded_conv(self._layer, self.datapath.control())

    def elaborate(self, platform):
        m = Module()
        layer = self._layer
        c, h, w = layer.in_shape
        kh, kw = layer.kernel
        p, o = layer.pool, layer.out_features
        _, ho, wo = layer.out_shape
        pix = c * layer.input_bits

        accept = Signal()
        # line buffer: position d holds the pixel that arrived d pixels ago
        depth = (kh - 1) * w + kw
        lines = Signal(depth * pix)
        y, x = Signal(range(h)), Signal(range(w))
        with m.If(accept):
            m.d.sync += lines.eq(Cat(self.i.payload, lines[:-pix]) if depth > 1 else self.i.payload)
            with m.If(x == w - 1):
                m.d.sync += [x.eq(0), y.eq(Mux(y == h - 1, 0, y + 1))]
            with m.Else():
                m.d.sync += x.eq(x + 1)

        # the window, in the artifact's fan-in order (channel, ky, kx)
        window = Signal(layer.in_features * layer.input_bits)
        bits = layer.input_bits
        for ch in range(c):
            for ky in range(kh):
                for kx in range(kw):
                    d = (kh - 1 - ky) * w + (kw - 1 - kx)
                    lo = d * pix + ch * bits
                    j = (ch * kh + ky) * kw + kx
                    m.d.comb += window[j * bits:(j + 1) * bits].eq(lines[lo:lo + bits])

        # Where the arriving pixel (y, x) puts the window it completes, as
        # per-coordinate flags looked up in constant bit tables: the conv
        # output (y - kh + 1, x - kw + 1) is inside the pooled area, first or
        # last of its pooling run (columns) or row group (rows).
        def table(size, k, n_out, pred):
            return Const(sum(1 << v for v in range(size)
                             if v >= k - 1 and v - (k - 1) < n_out * p and pred((v - (k - 1)) % p)), size)
        in_area = (table(h, kh, ho, lambda r: True).bit_select(y, 1)
                   & table(w, kw, wo, lambda r: True).bit_select(x, 1))
        flags = data.StructLayout({"col_first": 1, "col_last": 1, "row_first": 1, "row_last": 1})

        if self.folded:
            fire, take, flag = self._folded_windows(m, accept, in_area, window, flags)
        else:
            fire, take, flag = self._unrolled_windows(m, accept, in_area, window, flags, table, x, y)

        # pooling: OR along the run, then with the same window's earlier rows
        run = Signal(o)
        merged = Signal(o)
        m.d.comb += merged.eq(Mux(flag.col_first, fire, run | fire))
        if p > 1:
            row = Signal(wo * o)   # entry 0: the oldest (leftmost) pending window
            pooled = Mux(flag.row_first, merged, row[:o] | merged)
        else:
            pooled = merged
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(take):
            m.d.sync += [run.eq(merged), self.o.valid.eq(flag.col_last & flag.row_last)]
            with m.If(flag.col_last):
                m.d.sync += self.o.payload.eq(pooled)
                if p > 1:
                    m.d.sync += row.eq(Cat(row[o:], pooled) if wo > 1 else pooled)
        return m

    def _unrolled_windows(self, m, accept, in_area, window, flags, table, x, y):
        """Every pixel's window through the constant-weight datapath, one per
        clock; its pooling flags travel alongside. Returns the window's
        outputs, whether the pooling takes them this clock, and their flags."""
        h, w, p = self._layer.in_shape[1], self._layer.in_shape[2], self._layer.pool
        kh, kw = self._layer.kernel
        _, ho, wo = self._layer.out_shape
        dp = self.datapath
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance),
                     accept.eq(self.i.valid & advance)]
        m.submodules.datapath = EnableInserter(advance)(dp)
        m.d.comb += dp.x.eq(window)
        tag = Signal(data.StructLayout({"valid": 1, **{k: 1 for k, _ in flags}}))
        with m.If(advance):
            m.d.sync += [
                tag.valid.eq(accept & in_area),
                tag.col_first.eq(table(w, kw, wo, lambda r: r == 0).bit_select(x, 1)),
                tag.col_last.eq(table(w, kw, wo, lambda r: r == p - 1).bit_select(x, 1)),
                tag.row_first.eq(table(h, kh, ho, lambda r: r == 0).bit_select(y, 1)),
                tag.row_last.eq(table(h, kh, ho, lambda r: r == p - 1).bit_select(y, 1)),
            ]
        tag = delayed(m, advance, tag, dp.latency, "tag")
        return dp.y, advance & tag.valid, tag

    def _folded_windows(self, m, accept, in_area, window, flags):
        """The windows the pooling keeps through the folded datapath: a
        window waits at the taps (``pending``, the pixel stream held) until
        the datapath takes it; the results arrive in raster order, so the
        pooling flags come from counters over the kept windows."""
        p = self._layer.pool
        _, _, wo = self._layer.out_shape
        m.submodules.datapath = dp = self.datapath
        pending, take_window = Signal(), Signal()
        m.d.comb += [dp.i.valid.eq(pending), dp.i.payload.eq(window),
                     take_window.eq(pending & dp.i.ready),
                     self.i.ready.eq(~pending | take_window), accept.eq(self.i.valid & self.i.ready)]
        with m.If(accept):
            m.d.sync += pending.eq(in_area)
        with m.Elif(take_window):
            m.d.sync += pending.eq(0)

        take = Signal()
        m.d.comb += [dp.o.ready.eq(~self.o.valid | self.o.ready), take.eq(dp.o.valid & dp.o.ready)]
        cx, cy, col = Signal(range(p)), Signal(range(p)), Signal(range(p * wo))
        flag = Signal(flags)
        m.d.comb += [flag.col_first.eq(cx == 0), flag.col_last.eq(cx == p - 1),
                     flag.row_first.eq(cy == 0), flag.row_last.eq(cy == p - 1)]
        with m.If(take):
            m.d.sync += cx.eq(Mux(cx == p - 1, 0, cx + 1))
            with m.If(col == p * wo - 1):
                m.d.sync += [col.eq(0), cy.eq(Mux(cy == p - 1, 0, cy + 1))]
            with m.Else():
                m.d.sync += col.eq(col + 1)
        return dp.o.payload, take, flag
