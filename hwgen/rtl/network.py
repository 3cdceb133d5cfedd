"""The whole network: layers, pipeline registers, argmax, valid/ready streams."""
from amaranth.hdl import EnableInserter, Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..errors import HwgenError
from .argmax import Argmax
from .arith import delayed
from .conv import ConvLayer, Deserializer, Serializer, UnrolledStage
from .folded import FoldedLayer
from .layer import LinearLayer

__all__ = ["Network", "StreamNetwork"]


def _layouts(model, score_shape):
    """The payloads of the network's ``i`` and ``o`` streams."""
    return data.ArrayLayout(unsigned(model.input_bits), model.input_features), data.StructLayout({
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

    def __init__(self, model, pipeline=0, datapaths=None):
        # datapaths: per layer "planes" or "direct" (see LinearLayer), default planes
        self._model = model
        datapaths = datapaths or ["planes"] * len(model.layers)
        self.layers = [LinearLayer(layer, pipeline, d) for layer, d in zip(model.layers, datapaths)]
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
    simd)``) or, where ``folding`` is None, unrolled between streams
    (:class:`UnrolledStage`); ``datapaths[k]`` ("planes" or "direct", see
    :class:`LinearLayer`) applies to unrolled and conv layers. Conv layers (:class:`ConvLayer`) work on pixel
    streams: a :class:`Serializer` cuts the input image into pixels, a
    :class:`Deserializer` gathers the last conv layer's map for the dense
    layers. ``pipeline = k > 0`` registers the adder trees every k levels.
    Ports as :class:`Network`. The stream out of layer k is visible as
    ``stage{k}`` / ``stage{k}_valid`` (the probes ``hwgen sim`` reads after a
    mismatch; a conv layer's is its pixel stream).
    """

    def __init__(self, model, folding=None, pipeline=0, datapaths=None):
        if folding is not None and len(folding) != len(model.layers):
            raise ValueError(f"{len(folding)} foldings for {len(model.layers)} layers")
        datapaths = datapaths or ["planes"] * len(model.layers)
        self._model = model
        self.layers, self.stages = [], []     # stages: the layers plus (de)serializers, in order
        for k, layer in enumerate(model.layers):
            if layer.op == "conv2d":
                if k and model.layers[k - 1].op != "conv2d":
                    raise HwgenError(f"layer {layer.name}: a conv layer after a dense layer has no "
                                     f"hardware (conv layers come first)")
                if not k:
                    self.stages.append(("serializer", Serializer(layer.in_shape, model.input_bits)))
                stage = ConvLayer(layer, pipeline, datapaths[k])
            elif folding is not None:
                stage = FoldedLayer(layer, *folding[k], pipeline)
            else:
                stage = UnrolledStage(layer, pipeline, datapaths[k])
            if k and model.layers[k - 1].op == "conv2d" and layer.op != "conv2d":
                self.stages.append(("deserializer", Deserializer(model.layers[k - 1].out_shape)))
            self.stages.append((layer.name, stage))
            self.layers.append(stage)
        score_shape = self.layers[-1].o.payload.shape().elem_shape
        self.input_layout, self.output_layout = _layouts(model, score_shape)
        # registered after every compare level: the argmax was the critical path
        self.argmax = Argmax(score_shape, model.n_classes, pipeline=1)
        super().__init__({
            "i": In(stream.Signature(self.input_layout)),
            "o": Out(stream.Signature(self.output_layout)),
        })

    @property
    def latency(self):
        """Cycles from an input offered to an idle network to its valid
        output (no stalls). Without conv layers the input is taken at once;
        with them it is taken with its last pixel, and the pixels follow
        their own timing through the conv layers' pooling."""
        t, pixels = 0, None
        for _, stage in self.stages:
            if isinstance(stage, Serializer):
                pixels = [t + stage.latency + q for q in range(stage.interval)]
            elif isinstance(stage, ConvLayer):
                pixels = [when + stage.latency for when, emits in zip(pixels, stage.emits()) if emits]
            elif isinstance(stage, Deserializer):
                t = pixels[-1] + stage.latency
            else:
                t += stage.latency
        return t + self.argmax.latency + 1

    @property
    def interval(self):
        """Cycles between inferences at full rate."""
        return max(stage.interval for _, stage in self.stages)

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
        m.d.comb += upstream.ready.eq(~self.o.valid | self.o.ready)
        _argmax_stage(m, self.argmax, upstream.ready, upstream.payload, upstream.valid, self.o)
        return m
