"""The whole network: layers, pipeline registers, argmax, valid/ready streams."""
from amaranth.hdl import EnableInserter, Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..errors import HwgenError
from . import handshake
from .argmax import Argmax, ArgmaxScan
from .arith import delayed
from .conv import ConvLayer, Deserializer, Fifo, UnrolledStage, pixel_layout
from .folded import FoldedLayer
from .layer import LinearLayer

__all__ = ["Network", "StreamNetwork"]


def _layouts(model, score_shape):
    """The payloads of the network's ``i`` and ``o`` streams: ``i`` takes
    the input vector, or one pixel where the first layer is a conv layer
    (see :func:`hwgen.rtl.input_words`)."""
    first = model.layers[0]
    if first.op == "conv2d":
        i = pixel_layout(model.input_bits, first.in_shape[0])
    else:
        i = data.ArrayLayout(unsigned(model.input_bits), model.input_features)
    return i, data.StructLayout({
        "label": unsigned(max((model.n_classes - 1).bit_length(), 1)),
        "scores": data.ArrayLayout(score_shape, model.n_classes),
    })


class Network(wiring.Component):
    """Fully unrolled, pipelined network: one inference per clock.

    A register stage follows every layer and the argmax. With ``pipeline =
    k > 0`` each layer's adder structures also get a register every k adder
    levels (:class:`LinearLayer`), adding its :attr:`LinearLayer.latency`
    cycles, and so does the argmax tree (:class:`Argmax`); :attr:`latency` is
    the total. The whole pipeline advances when the
    output is empty or accepted (``o.ready``); ``i.ready`` is that same enable.

    Members
    -------
    i : ``In(stream.Signature(ArrayLayout(unsigned(input_bits), input_features)))``
        Pixels, element j at bits ``[j*input_bits, (j+1)*input_bits)``.
    o : ``Out(stream.Signature(StructLayout({"label": unsigned(k), "scores": ArrayLayout(signed(w), n_classes)})))``
    """

    def __init__(self, model, pipeline=0, datapaths=None, family="generic"):
        # datapaths: per layer "planes" or "direct" (see LinearLayer), default planes;
        # family: the adder structures (see hwgen.rtl.arith.Adders)
        self._model = model
        datapaths = datapaths or ["planes"] * len(model.layers)
        self.layers = [LinearLayer(layer, pipeline, d, family) for layer, d in zip(model.layers, datapaths)]
        score_shape = self.layers[-1].y.shape().elem_shape
        self.input_layout, self.output_layout = _layouts(model, score_shape)
        self.argmax = Argmax(score_shape, model.n_classes, pipeline)
        super().__init__({
            "i": In(stream.Signature(self.input_layout)),
            "o": Out(stream.Signature(self.output_layout)),
        })

    @property
    def latency(self):
        """Cycles from an accepted input to its valid output (no stalls)."""
        return sum(layer.latency + 1 for layer in self.layers) + self.argmax.latency + 1

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]

        payload, valid = self.i.payload, self.i.valid
        for k, layer in enumerate(self.layers):
            # the layer's own pipeline registers stall with the rest
            m.submodules[self._model.layers[k].name] = EnableInserter(advance)(layer)
            m.d.comb += layer.x.eq(payload)
            valid = delayed(m, advance, valid, layer.latency, f"stage{k}_valid")
            reg = Signal(layer.y.shape(), name=f"stage{k}")
            reg_valid = Signal(name=f"stage{k}_valid")
            with m.If(advance):
                m.d.sync += [reg.eq(layer.y), reg_valid.eq(valid)]
            payload, valid = reg, reg_valid

        _argmax_stage(m, self.argmax, advance, payload, valid, self.o)
        return m


def _argmax_stage(m, argmax, advance, scores, valid, o):
    """The argmax (its pipeline stalled by ``advance``), the scores and valid
    delayed alongside the index, then the output register ``o``."""
    m.submodules.argmax = EnableInserter(advance)(argmax)
    m.d.comb += argmax.scores.eq(scores)
    scores = delayed(m, advance, scores, argmax.latency, "argmax_scores")
    valid = delayed(m, advance, valid, argmax.latency, "argmax_valid")
    with m.If(advance):
        m.d.sync += [o.payload.scores.eq(scores), o.payload.label.eq(argmax.index), o.valid.eq(valid)]


class StreamNetwork(wiring.Component):
    """Layers as stream stages chained by valid/ready, then the argmax,
    registered after every compare level. Each stage works on its own
    inference, so the network streams one inference per :attr:`interval`
    cycles (its slowest stage's).

    Dense layers are folded (:class:`FoldedLayer`, ``folding[k] = (pe,
    simd)``) or, where ``folding`` (or its entry) is None, unrolled between
    streams (:class:`UnrolledStage`); ``datapaths[k]`` ("planes" or
    "direct", see :class:`LinearLayer`) applies to unrolled layers. Conv
    layers (:class:`ConvLayer`: windows folded the same way, or on a
    constant-weight datapath) work on pixel streams: the network then takes
    its input one pixel per transfer (raster order, the pixel's channels in
    one word: :func:`hwgen.rtl.input_words`), and a :class:`Deserializer`
    gathers the last conv layer's map for the dense layers. A folded conv
    layer after a conv layer gets a :class:`Fifo` (:meth:`_add_fifos`).
    ``pipeline = k > 0`` registers the adder trees every k levels. Ports as
    :class:`Network`, but for the pixel input.

    The argmax tree has a register after every level. Where the network
    streams no faster than one inference per ``argmax.latency + 1`` clocks
    (:attr:`argmax_held`, decided by the handshake model), it works on the
    last layer's output while that layer holds it, and the network's output
    is that held register with the index once the index is ready: no copy
    of the scores travels alongside the tree or sits in an output register,
    which saves ``latency + 1`` registers of all the scores (805
    flip-flops for the digits MLP's ten 16-bit scores). Otherwise the
    scores are delayed with the tree, one inference per clock. Folded dense
    layers read their upstream's held output too where that costs no
    throughput (:meth:`_hold_inputs`). The stream out of layer k is
    visible as ``stage{k}`` / ``stage{k}_valid`` (the probes ``hwgen sim``
    reads after a mismatch; a conv layer's is its pixel stream).
    """

    def __init__(self, model, folding=None, pipeline=0, datapaths=None, family="generic"):
        if folding is not None and len(folding) != len(model.layers):
            raise ValueError(f"{len(folding)} foldings for {len(model.layers)} layers")
        datapaths = datapaths or ["planes"] * len(model.layers)
        self._model, self._timing_cache = model, None
        self.layers, self.stages = [], []     # stages: the layers plus deserializer and FIFOs, in order
        for k, layer in enumerate(model.layers):
            if layer.op == "conv2d":
                if k and model.layers[k - 1].op != "conv2d":
                    raise HwgenError(f"layer {layer.name}: a conv layer after a dense layer has no "
                                     f"hardware (conv layers come first)")
                stage = ConvLayer(layer, pipeline, datapaths[k], folding[k] if folding else None, family)
            elif folding is not None and folding[k] is not None:
                stage = FoldedLayer(layer, *folding[k], pipeline, family)
            else:
                stage = UnrolledStage(layer, pipeline, datapaths[k], family)
            if k and model.layers[k - 1].op == "conv2d" and layer.op != "conv2d":
                self.stages.append(("deserializer", Deserializer(model.layers[k - 1].out_shape)))
            self.stages.append((layer.name, stage))
            self.layers.append(stage)
        score_shape = self.layers[-1].o.payload.shape().elem_shape
        self.input_layout, self.output_layout = _layouts(model, score_shape)
        # registered after every compare level: the argmax was the critical path
        self._argmax_tree = Argmax(score_shape, model.n_classes, pipeline=1)
        # or a scan of the held scores, its comparison registered where the
        # layers are pipelined for Fmax
        self._argmax_scan = ArgmaxScan(score_shape, model.n_classes, clocks=2 if pipeline else 1)
        self.argmax, self.argmax_kind = self._argmax_tree, "delayed"
        self._add_fifos()
        self._hold_inputs()
        # hold the scores upstream, and scan them, where that costs no throughput
        timings = {kind: self._simulate(argmax=kind) for kind in self.ARGMAX_KINDS}
        self.argmax_kind = next(kind for kind in self.ARGMAX_KINDS if timings[kind][1] <= timings["delayed"][1])
        self._timing_cache = timings[self.argmax_kind]
        if self.argmax_kind == "scan":
            self.argmax = self._argmax_scan
        unused = self._argmax_tree if self.argmax_kind == "scan" else self._argmax_scan
        unused._MustUse__silence = True          # not built
        super().__init__({
            "i": In(stream.Signature(self.input_layout)),
            "o": Out(stream.Signature(self.output_layout)),
        })

    #: the argmax stages, cheapest first: a scan of the held scores (one
    #: score a clock, or two where the layers are pipelined), the tree on
    #: the held scores, the tree with the scores delayed alongside it
    ARGMAX_KINDS = ("scan", "held", "delayed")

    @property
    def argmax_held(self):
        """Whether the argmax works on the last layer's held output."""
        return self.argmax_kind != "delayed"

    def argmax_control(self, kind=None):
        """The argmax stage's handshakes (:mod:`hwgen.rtl.handshake`), of
        :attr:`argmax_kind` unless ``kind`` (one of :attr:`ARGMAX_KINDS`)
        says."""
        kind = kind or self.argmax_kind
        if kind == "scan":
            return handshake.Hold(self._argmax_scan.latency)
        tree = self._argmax_tree.latency
        return handshake.Hold(tree) if kind == "held" else handshake.Pipe(tree + 1)

    def _simulate(self, fifos=None, argmax=None):
        """``(latency, interval)`` from the stages' handshake models
        (:mod:`hwgen.rtl.handshake`), with FIFOs of ``fifos[j]`` entries
        before stage j (:meth:`_add_fifos` asks so before it puts them into
        :attr:`stages`), the argmax as :meth:`argmax_control`: six images
        offered back to back, the interval the longest gap between the
        last four outputs (stages that wait on each other can alternate
        between two gaps)."""
        models = []
        for j, (_, stage) in enumerate(self.stages):
            if (fifos or {}).get(j):
                models.append(handshake.Fifo(fifos[j]))
            models.append(stage.control())
        out, _ = handshake.simulate(models + [self.argmax_control(argmax)], 6)
        return out[0], max(b - a for a, b in zip(out[2:], out[3:]))

    def _timing(self):
        if self._timing_cache is None:
            self._timing_cache = self._simulate()
        return self._timing_cache

    def _hold_inputs(self):
        """Each folded dense layer works on its upstream's held payload
        (:attr:`FoldedLayer.held_input`: no input register) where that
        makes neither the interval nor the latency grow, by the handshake
        model, deciding from the first layer to the last. The upstream then
        stays busy until the layer's last word, which costs a clock per
        inference where the layer is the slowest behind a folded layer."""
        latency, interval = self._simulate()
        for _, stage in self.stages:
            if isinstance(stage, FoldedLayer):
                stage.held_input = True
                lat, iv = self._simulate()
                if iv > interval or lat > latency:
                    stage.held_input = False
                else:
                    latency = lat

    def _add_fifos(self):
        """A folded conv layer takes pixels in bursts (quickly between the
        rows of windows it keeps, one per window inside them) while the conv
        layer before it emits them in bursts of its own: coupled through one
        output register, each stalls the other and the network streams
        slower than its slowest layer. A :class:`Fifo` before the folded
        layer decouples them. Its depth is the smallest (0: none, 2, 4, 8,
        ... up to the map) that streams as fast as a whole map of
        buffering, by the handshake model."""
        sites = [j for j, (_, stage) in enumerate(self.stages) if j and isinstance(stage, ConvLayer)
                 and stage.folded and isinstance(self.stages[j - 1][1], ConvLayer)]
        self.fifos = {}      # layer name -> depth of the FIFO before it
        if not sites:
            return
        top = {j: 2 + self.stages[j][1].layer.in_shape[1] * self.stages[j][1].layer.in_shape[2] for j in sites}
        best = self._simulate(top)[1]
        depths = dict(top)
        for j in sites:
            d = 0
            while d < top[j] and self._simulate({**depths, j: d})[1] > best:
                d = min(max(2, 2 * d), top[j])
            depths[j] = d
        self.fifos = {self.stages[j][0]: depths[j] for j in sites if depths[j]}
        for j in reversed(sites):
            if depths[j]:
                upstream = self.stages[j - 1][1]
                self.stages.insert(j, (f"{self.stages[j][0]}_fifo",
                                       Fifo(upstream.o.payload.shape(), depths[j])))

    @property
    def latency(self):
        """Cycles from an input offered to an idle network (with conv
        layers: its first pixel, the others following as fast as they are
        taken) to its valid output, with an always-ready sink."""
        return self._timing()[0]

    @property
    def interval(self):
        """Cycles between inferences at full rate: the slowest stage's, or
        more where a folded conv layer holds the pixel stream."""
        return self._timing()[1]

    def elaborate(self, platform):
        m = Module()
        upstream = wiring.flipped(self.i)
        k = 0
        for name, stage in self.stages:
            m.submodules[name] = stage
            wiring.connect(m, upstream, stage.i)
            upstream = stage.o
            if stage in self.layers:
                probe = Signal(stage.o.payload.shape(), name=f"stage{k}")
                probe_valid = Signal(name=f"stage{k}_valid")
                m.d.comb += [probe.eq(stage.o.payload), probe_valid.eq(stage.o.valid)]
                k += 1
        if self.argmax_held:
            _held_argmax_stage(m, self.argmax, upstream, self.o, self.argmax_kind == "scan")
        else:
            m.d.comb += upstream.ready.eq(~self.o.valid | self.o.ready)
            _argmax_stage(m, self.argmax, upstream.ready, upstream.payload, upstream.valid, self.o)
        return m


def _held_argmax_stage(m, argmax, upstream, o, scan):
    """The argmax on ``upstream``'s payload while ``upstream`` holds it
    (valid and not taken, so it cannot change): after ``argmax.latency``
    such clocks (the tree's levels, or the scan's steps, one per score:
    ``scan``) the index is the payload's, and the output is the held
    payload with that index, taken from ``upstream`` as it is taken from
    ``o`` (:class:`hwgen.rtl.handshake.Hold`). No register copies the
    scores: the last layer's output register is the network's."""
    m.submodules.argmax = argmax
    seen = Signal(range(argmax.latency + 1))     # clocks the held payload has been in the argmax
    done = Signal()
    m.d.comb += [argmax.scores.eq(upstream.payload), done.eq(seen == argmax.latency),
                 o.payload.scores.eq(upstream.payload), o.payload.label.eq(argmax.index),
                 o.valid.eq(upstream.valid & done), upstream.ready.eq(o.ready & done)]
    if scan:
        m.d.comb += [argmax.k.eq(seen), argmax.step.eq(upstream.valid & ~done)]
    with m.If(upstream.valid & done & o.ready):
        m.d.sync += seen.eq(0)
    with m.Elif(upstream.valid & ~done):
        m.d.sync += seen.eq(seen + 1)
