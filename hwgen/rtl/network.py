"""The whole network: layers, pipeline registers, argmax, valid/ready streams."""
from amaranth.hdl import EnableInserter, Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .argmax import Argmax
from .arith import delayed
from .folded import FoldedLayer
from .layer import LinearLayer

__all__ = ["FoldedNetwork", "Network"]


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

    def __init__(self, model, pipeline=0):
        self._model = model
        self.layers = [LinearLayer(layer, pipeline) for layer in model.layers]
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


class FoldedNetwork(wiring.Component):
    """Folded layers (:class:`FoldedLayer`) chained by valid/ready streams,
    then the argmax, registered after every compare level. Each layer works
    on its own inference, so the network streams one inference per
    :attr:`interval` cycles (its slowest layer's).

    ``folding``: one ``(pe, simd)`` per layer; ``pipeline = k > 0``
    registers the lanes' adder trees every k levels. Ports as :class:`Network`.
    The stream between layer k and k+1 is visible as ``stage{k}`` /
    ``stage{k}_valid`` (the probes ``hwgen sim`` reads after a mismatch).
    """

    def __init__(self, model, folding, pipeline=0):
        if len(folding) != len(model.layers):
            raise ValueError(f"{len(folding)} foldings for {len(model.layers)} layers")
        self._model = model
        self.layers = [FoldedLayer(layer, pe, simd, pipeline) for layer, (pe, simd) in zip(model.layers, folding)]
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
        """Cycles from an accepted input to its valid output (no stalls)."""
        return sum(layer.latency for layer in self.layers) + self.argmax.latency + 1

    @property
    def interval(self):
        """Cycles between inferences at full rate."""
        return max(layer.interval for layer in self.layers)

    def elaborate(self, platform):
        m = Module()
        upstream = wiring.flipped(self.i)
        for k, layer in enumerate(self.layers):
            m.submodules[self._model.layers[k].name] = layer
            wiring.connect(m, upstream, layer.i)
            probe = Signal(layer.o.payload.shape(), name=f"stage{k}")
            probe_valid = Signal(name=f"stage{k}_valid")
            m.d.comb += [probe.eq(layer.o.payload), probe_valid.eq(layer.o.valid)]
            upstream = layer.o
        m.d.comb += upstream.ready.eq(~self.o.valid | self.o.ready)
        _argmax_stage(m, self.argmax, upstream.ready, upstream.payload, upstream.valid, self.o)
        return m
