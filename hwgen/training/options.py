"""The training options' vocabulary, without torch: defaults, the models,
augmentations, bit-selection rules, scale granularities and the quantizer
presets. The command line builds its help from these (``hwgen --help``
imports no torch); :mod:`hwgen.training.quant` and
:mod:`hwgen.training.train` build on them."""

__all__ = ["DEFAULTS", "LEGACY", "MODELS", "AUGMENTS", "SELECTIONS", "SCALES", "MASK_GROUP_NAMES",
           "QUANTIZER_PRESETS"]

DEFAULTS = dict(dataset="digits", model="mlp", conv="c16,c16,p,c32,c32,p", dim=32, depth=2, heads=4,
                bits="1.4", act_bits=1, hidden=[16, 16], augment="none", dropout=0.0, logit_scale=True,
                distill=0.0, epochs=40, batch_size=64, lr=0.01, seed=0, quantizer="bnn",
                selection="middle-out", scale="tensor", recompute_every=1, freeze_after=1.0, mask_group=None,
                threads=0)

#: What a checkpoint or sweep run recorded before an option existed was
#: trained with, where that differs from today's default.
LEGACY = dict(logit_scale=False)

MODELS = ("mlp", "cnn", "transformer")
AUGMENTS = ("none", "shift", "shift+flip")
#: Bit-selection rules: which weights of a tensor get more bits.
SELECTIONS = ("middle-out", "magnitude", "random")
#: Scale granularity: one ``mu_b`` per tensor (the paper) or per output channel.
SCALES = ("tensor", "channel")
#: The named mask groups (:data:`hwgen.training.quant.NAMED_GROUPS`).
MASK_GROUP_NAMES = ("neuron", "input")

#: The ProxConnect++ presets, name -> the fields of
#: :class:`hwgen.training.quant.Quantizer`. Annealing parameters are part of
#: the preset (docs/training.md).
QUANTIZER_PRESETS = {
    "bc": dict(forward="sign", backward="identity", raw_backward=True,
               summary="BinaryConnect: sign / identity (plain straight-through)"),
    "bnn": dict(forward="sign", backward="clip", raw_backward=True,
                summary="BNN: sign / clip(w, -1, 1), gradient 1[|w| <= 1]"),
    "bnn+": dict(forward="sign", backward="signswish", raw_backward=False, start=1.0, end=1.0,
                 summary="BNN+: sign / SignSwish_beta, beta = 1 on w / mu_1"),
    "proxconnect": dict(forward="prox", backward="prox", raw_backward=False, start=0.0, end=1.0, hard_after=0.9,
                        summary="ProxConnect: prox quantizer both ways, rho 0 -> 1 linearly over the first "
                                "90 % of training (rho = 1 is sign), then hard sign"),
    "bnn++": dict(forward="signswish", backward="signswish", raw_backward=False, start=1.0, end=2.0,
                  hard_after=0.9,
                  summary="BNN++: SignSwish both ways, beta 1 -> 2 geometrically over the first 90 % of "
                          "training, then hard sign forward with SignSwish_2 backward"),
}
