"""Convolution hardware: pixel streams, a line buffer and a sliding window.

A feature map travels as a stream of pixels in raster order (row by row),
one pixel (all its channels) per transfer. :class:`ConvLayer` keeps the last
``(kh - 1) * W + kw`` pixels in a shift register, the *line buffer*: after
pixel ``(y, x)`` arrives, the window whose bottom-right corner it is sits at
fixed taps of that register, so one :class:`~hwgen.rtl.layer.LinearLayer`
(weights as constants: the bit-plane popcount or MAC datapath) computes all
output channels of one window per clock. Windows that wrap around a row edge
are computed too and dropped, so a layer takes ``H * W`` clocks per map.

Max-pooling after the threshold is a logical OR of bits (``max`` on +-1).
The conv outputs of one pooling window arrive in ``p`` runs of ``p``
consecutive pixels, one run per conv row: the run's OR is kept in a
register, and the ORs of the windows of one row wait for the next row's in a
shift register of ``W'' = W' // p`` entries (a line buffer of the pooled
row). Conv rows and columns beyond ``p * W''`` (``p * H''``) are dropped, as
by ``torch.nn.MaxPool2d``.

The network's ports carry whole images; :class:`Serializer` reads an
offered image vector out as its pixel stream (multiplexers, no storage) and
:class:`Deserializer` gathers the last conv layer's pixels into the
flattened (channel-major) vector the dense layers read (a shift register:
the reordering is wiring).
"""
from amaranth.hdl import Cat, Const, EnableInserter, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..errors import HwgenError
from .arith import delayed
from .layer import LinearLayer

__all__ = ["ConvLayer", "Deserializer", "Serializer", "UnrolledStage"]


def _pixel(bits, channels):
    return data.ArrayLayout(unsigned(bits), channels)


class _MapStream(wiring.Component):
    """A stage that passes a ``[C, H, W]`` map (``shape``) pixel by pixel:
    one map per ``H * W`` clocks."""

    @property
    def interval(self):
        c, h, w = self.shape
        return h * w


class Serializer(_MapStream):
    """Image vectors (``[C, H, W]`` flattened channel-major, as the artifact
    orders them) in, the image's ``H * W`` pixels out in raster order.

    It stores nothing: a stream's payload holds still while it is valid and
    not taken, so the pixels are read straight from the offered image (one
    multiplexer per channel), and the image is taken with its last pixel.
    The next image's first pixel follows at once: ``H * W`` clocks per image.
    """

    #: clocks from an offered image to its first pixel on ``o``
    latency = 0

    def __init__(self, shape, bits):
        self.shape, self.bits = tuple(shape), int(bits)
        c, h, w = self.shape
        super().__init__({
            "i": In(stream.Signature(_pixel(bits, c * h * w))),
            "o": Out(stream.Signature(_pixel(bits, c))),
        })

    def elaborate(self, platform):
        m = Module()
        c, h, w = self.shape
        n, bits = h * w, self.bits
        image = self.i.payload.as_value()
        q = Signal(range(n))        # the pixel on offer
        m.d.comb += [self.o.valid.eq(self.i.valid), self.i.ready.eq(self.o.ready & (q == n - 1)),
                     self.o.payload.eq(Cat(image[k * n * bits:(k + 1) * n * bits].word_select(q, bits)
                                           for k in range(c)))]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += q.eq(Mux(q == n - 1, 0, q + 1))
        return m


class Deserializer(_MapStream):
    """The pixels of a ``[C, H, W]`` map of bits (raster order) in, the map
    flattened channel-major out, as one vector per map."""

    #: clocks from the map's last accepted pixel to the vector on ``o``
    latency = 1

    def __init__(self, shape):
        self.shape = tuple(shape)
        c, h, w = self.shape
        super().__init__({
            "i": In(stream.Signature(unsigned(c))),
            "o": Out(stream.Signature(_pixel(1, c * h * w))),
        })

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


class UnrolledStage(wiring.Component):
    """A dense layer with constant weights (:class:`LinearLayer`) between
    streams: one vector per clock, the layer's pipeline and an output
    register advancing together when the output is empty or taken."""

    def __init__(self, layer, pipeline=0, datapath="planes"):
        self._layer = layer
        self.datapath = LinearLayer(layer, pipeline, datapath)
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
    """One ``conv2d`` :class:`hwgen.artifact.Layer` (threshold, 1-bit
    outputs) over pixel streams: see the module docstring. ``pipeline = k >
    0`` registers the window datapath's adder trees every k levels.

    Members
    -------
    i : ``In(stream.Signature(ArrayLayout(unsigned(input_bits), C)))``, one
        input pixel per transfer, raster order.
    o : ``Out(stream.Signature(unsigned(out_channels)))``, one pooled output
        pixel per transfer (bit o = channel o fires), raster order.
    """

    def __init__(self, layer, pipeline=0, datapath="planes"):
        if layer.op != "conv2d":
            raise HwgenError(f"layer {layer.name}: ConvLayer takes conv2d layers, not {layer.op}")
        if layer.output != "threshold" or layer.output_bits != 1:
            raise HwgenError(f"layer {layer.name}: a conv layer in hardware must produce 1-bit "
                             f"activations")
        if layer.input == "binary" and layer.input_bits != 1:
            raise HwgenError(f"layer {layer.name}: conv layers read unsigned or 1-bit binary inputs")
        self._layer = layer
        self.datapath = LinearLayer(layer, pipeline, datapath)
        super().__init__({
            "i": In(stream.Signature(_pixel(layer.input_bits, layer.in_shape[0]))),
            "o": Out(stream.Signature(unsigned(layer.out_features))),
        })

    @property
    def layer(self):
        return self._layer

    @property
    def datapath_kind(self):
        return self.datapath.datapath_kind

    @property
    def latency(self):
        """Clocks from the pixel that completes a pooling window to that
        window's output pixel on ``o`` (no stalls)."""
        return self.datapath.latency + 2

    @property
    def interval(self):
        """Clocks per map: one per input pixel."""
        _, h, w = self._layer.in_shape
        return h * w

    def emits(self):
        """For each input pixel (raster order), whether it completes a pooled
        output pixel: the timing model of :attr:`StreamNetwork.latency`."""
        layer = self._layer
        _, h, w = layer.in_shape
        kh, kw = layer.kernel
        p = layer.pool
        _, ho, wo = layer.out_shape
        rows = {kh - 1 + p * r + p - 1 for r in range(ho)}
        cols = {kw - 1 + p * c + p - 1 for c in range(wo)}
        return [y in rows and x in cols for y in range(h) for x in range(w)]

    def elaborate(self, platform):
        m = Module()
        layer = self._layer
        c, h, w = layer.in_shape
        kh, kw = layer.kernel
        p, o = layer.pool, layer.out_features
        _, ho, wo = layer.out_shape
        pix = c * layer.input_bits

        advance, accept = Signal(), Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance),
                     accept.eq(self.i.valid & advance)]

        # line buffer: position d holds the pixel that arrived d pixels ago
        depth = (kh - 1) * w + kw
        lines = Signal(depth * pix)
        y, x = Signal(range(h)), Signal(range(w))

        # Where the arriving pixel (y, x) puts the window it completes, as
        # per-coordinate flags looked up in constant bit tables: the conv
        # output (y - kh + 1, x - kw + 1) is inside the pooled area, first or
        # last of its pooling run (columns) or row group (rows).
        def table(size, k, n_out, pred):
            return Const(sum(1 << v for v in range(size)
                             if v >= k - 1 and v - (k - 1) < n_out * p and pred((v - (k - 1)) % p)), size)
        tag_layout = data.StructLayout({"valid": 1, "col_first": 1, "col_last": 1,
                                        "row_first": 1, "row_last": 1})
        tag = Signal(tag_layout)
        with m.If(advance):
            m.d.sync += [
                tag.valid.eq(accept & table(h, kh, ho, lambda r: True).bit_select(y, 1)
                             & table(w, kw, wo, lambda r: True).bit_select(x, 1)),
                tag.col_first.eq(table(w, kw, wo, lambda r: r == 0).bit_select(x, 1)),
                tag.col_last.eq(table(w, kw, wo, lambda r: r == p - 1).bit_select(x, 1)),
                tag.row_first.eq(table(h, kh, ho, lambda r: r == 0).bit_select(y, 1)),
                tag.row_last.eq(table(h, kh, ho, lambda r: r == p - 1).bit_select(y, 1)),
            ]
        with m.If(accept):
            m.d.sync += lines.eq(Cat(self.i.payload, lines[:-pix]) if depth > 1 else self.i.payload)
            with m.If(x == w - 1):
                m.d.sync += [x.eq(0), y.eq(Mux(y == h - 1, 0, y + 1))]
            with m.Else():
                m.d.sync += x.eq(x + 1)

        # the window, in the artifact's fan-in order (channel, ky, kx)
        m.submodules.datapath = dp = EnableInserter(advance)(self.datapath)
        bits = layer.input_bits
        for ch in range(c):
            for ky in range(kh):
                for kx in range(kw):
                    d = (kh - 1 - ky) * w + (kw - 1 - kx)
                    lo = d * pix + ch * bits
                    m.d.comb += dp.x[(ch * kh + ky) * kw + kx].eq(lines[lo:lo + bits])
        tag = delayed(m, advance, tag, self.datapath.latency, "tag")
        fire = dp.y

        # pooling: OR along the run, then with the same window's earlier rows
        run = Signal(o)
        merged = Signal(o)
        m.d.comb += merged.eq(Mux(tag.col_first, fire, run | fire))
        if p > 1:
            row = Signal(wo * o)   # entry 0: the oldest (leftmost) pending window
            pooled = Mux(tag.row_first, merged, row[:o] | merged)
        else:
            pooled = merged
        with m.If(advance):
            m.d.sync += self.o.valid.eq(tag.valid & tag.col_last & tag.row_last)
            with m.If(tag.valid):
                m.d.sync += run.eq(merged)
                with m.If(tag.col_last):
                    m.d.sync += self.o.payload.eq(pooled)
                    if p > 1:
                        m.d.sync += row.eq(Cat(row[o:], pooled) if wo > 1 else pooled)
        return m
