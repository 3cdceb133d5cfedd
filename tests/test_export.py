"""hwgen.export on any nn.Module: every unsupported part is refused with an
error naming it, and every supported combination of the layer options
exports exactly (the integer model makes the float model's decisions)."""
import itertools
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest
import torch
from torch import nn

import hwgen
from hwgen.core import reference

MIX = {1: 0.6, 2: 0.4}


def lin(i, o, bias=False, **kw):
    return hwgen.HBBLinear(i, o, bias=bias, mix=MIX, **kw)


def conv(i, o, **kw):
    return hwgen.HBBConv2d(i, o, 3, mix=MIX, **kw)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.bn, self.act = lin(16, 16), nn.BatchNorm1d(16), hwgen.SignActivation()
        self.inp, self.out = lin(16, 16), lin(16, 4)

    def forward(self, x):
        x = self.act(self.inp(x))
        return self.out(x + self.act(self.bn(self.a(x))))


class FunctionalRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = lin(16, 8), lin(8, 4)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = lin(16, 4)

    def forward(self, x):
        return self.a(x) if x.sum() > 0 else -self.a(x)


class ScaledInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(16))
        self.a = lin(16, 4)

    def forward(self, x):
        return self.a(x * self.w)


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = lin(16, 4)

    def forward(self, x, y):
        return self.a(x)


class TupleOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = lin(16, 4)

    def forward(self, x):
        y = self.a(x)
        return y, y


def bn_no_stats():
    return nn.Sequential(lin(16, 8), nn.BatchNorm1d(8, track_running_stats=False), hwgen.SignActivation(),
                         lin(8, 4))


def pool_before_negative_bn():
    bn = nn.BatchNorm2d(4)
    with torch.no_grad():
        bn.weight[1] = -0.5
    return nn.Sequential(conv(1, 4), nn.MaxPool2d(2), bn, hwgen.SignActivation(), nn.Flatten(), lin(36, 4))


SIGN = hwgen.SignActivation
REFUSED = {
    "relu": (lambda: nn.Sequential(lin(16, 8), nn.BatchNorm1d(8), nn.ReLU(), lin(8, 4)), None,
             ["ReLU '2'", "not supported"]),
    "float-linear": (lambda: nn.Sequential(lin(16, 8), nn.BatchNorm1d(8), SIGN(), nn.Linear(8, 4)), None,
                     ["Linear '3'", "not supported"]),
    "layernorm": (lambda: nn.Sequential(lin(16, 8), nn.LayerNorm(8), SIGN(), lin(8, 4)), None,
                  ["LayerNorm '1'"]),
    "residual-add": (Residual, None, ["residual"]),
    "functional-relu": (FunctionalRelu, None, ["relu", "not supported"]),
    "data-dependent-forward": (DataDependent, None, ["torch.fx", "control flow"]),
    "parameter-in-forward": (ScaledInput, None, ["the tensor 'w'"]),
    "two-inputs": (TwoInputs, None, ["takes 2 inputs"]),
    "tuple-output": (TupleOut, None, ["tuple"]),
    "conv-padding": (lambda: nn.Sequential(conv(1, 4), SIGN(), nn.Flatten(), lin(256, 4)), "pad",
                     ["padding", "HBBConv2d '0'"]),
    "conv-stride": (lambda: nn.Sequential(conv(1, 4), SIGN(), nn.Flatten(), lin(36, 4)), "stride",
                    ["stride", "HBBConv2d '0'"]),
    "pool-overlapping": (lambda: nn.Sequential(conv(1, 4), SIGN(), nn.MaxPool2d(3, stride=1), nn.Flatten(),
                                               lin(64, 4)), None, ["MaxPool2d '2'", "stride"]),
    "pool-before-negative-gamma": (pool_before_negative_bn, None, ["MaxPool2d '1'", "negative", "channel(s) 1"]),
    "bn-on-scores": (lambda: nn.Sequential(lin(16, 4), nn.BatchNorm1d(4)), None, ["BatchNorm1d '1'", "scores"]),
    "activation-at-end": (lambda: nn.Sequential(lin(16, 4), SIGN()), None, ["SignActivation '1'", "scores"]),
    "no-activation-between": (lambda: nn.Sequential(lin(16, 8), nn.BatchNorm1d(8), lin(8, 4)), None,
                              ["HBBLinear '2'", "without a SignActivation"]),
    "logit-scale-hidden": (lambda: nn.Sequential(lin(16, 8), hwgen.LogitScale(), SIGN(), lin(8, 4)), None,
                           ["LogitScale '1'"]),
    "bn-before-first-layer": (lambda: nn.Sequential(nn.BatchNorm1d(16), lin(16, 4)), None,
                              ["BatchNorm1d '0'", "before the first"]),
    "bn-without-running-stats": (bn_no_stats, None, ["track_running_stats"]),
    "batch-merging-reshape": (lambda: nn.Sequential(nn.Flatten(0), nn.Unflatten(0, (2, 16)), lin(16, 4)),
                              None, ["batch dimension"]),
    "no-hwgen-layers": (lambda: nn.Sequential(nn.Linear(16, 4)), None, ["no HBBLinear"]),
    "conv-without-input-shape": (lambda: nn.Sequential(conv(1, 4), SIGN(), nn.Flatten(), lin(144, 4)), None,
                                 ["input_shape"]),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_unsupported_parts_are_refused_by_name(case):
    build, tweak, words = REFUSED[case]
    model = build()
    shape = None
    if tweak == "pad":
        model[0].padding = (1, 1)
        shape = (1, 8, 8)
    elif tweak == "stride":
        model[0].stride = (2, 2)
        shape = (1, 8, 8)
    elif case in ("pool-overlapping", "pool-before-negative-gamma"):
        shape = (1, 8, 8)
    with pytest.raises(hwgen.HwgenError) as err:
        hwgen.export(model, input_bits=4, input_shape=shape)
    msg = str(err.value)
    for word in words:
        assert word in msg, f"{case}: {word!r} not in {msg!r}"
    assert "\n" not in msg


def test_bad_arguments_are_refused():
    model = nn.Sequential(lin(16, 4))
    for kw, word in [({"input_bits": 0}, "input_bits"), ({"input_bits": 17}, "input_bits"),
                     ({"input_bits": 4, "frac_bits": 25}, "frac_bits"),
                     ({"input_bits": 4, "input_shape": (0,)}, "input_shape"),
                     ({"input_bits": 4, "input_shape": (15,)}, "does not run")]:
        with pytest.raises(hwgen.HwgenError, match=word):
            hwgen.export(model, **kw)
    with pytest.raises(hwgen.HwgenError, match="nn.Module"):
        hwgen.export("model.pt", input_bits=4)
    with pytest.raises(hwgen.HwgenError, match="meta must be JSON"):
        hwgen.export(model, input_bits=4, meta={"x": object()})
    with pytest.raises(hwgen.HwgenError, match="meta must be a JSON object"):
        hwgen.export(model, input_bits=4, meta=[1])


# -- the option sweep: exact or refused --------------------------------------------------------------------------

def _calibrate(model, x, gen):
    """BatchNorm statistics of the data (momentum 1), then random affine
    parameters with some negative and some zero gammas, and random biases,
    so that thresholds land inside the data's range."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(x)
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
                n = m.num_features
                m.weight.copy_(torch.randn(n, generator=gen))
                m.weight[0] = 0.0
                m.bias.copy_(torch.randn(n, generator=gen) * 0.5)
            if isinstance(m, (hwgen.HBBLinear, hwgen.HBBConv2d)) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 3)


def _torch_activations(model, x):
    """``(inputs, outputs)`` of every activation module in call order (eval
    mode), and the scores."""
    zs, seen = [], []

    def hook(mod, inp, out):
        zs.append(inp[0].detach().double())
        seen.append(out.detach())
    hooks = [m.register_forward_hook(hook)
             for m in model.modules() if isinstance(m, (hwgen.SignActivation, hwgen.ResidualActivation))]
    model.eval()
    with torch.no_grad():
        scores = model(x)
    for h in hooks:
        h.remove()
    return zs, seen, scores.double().numpy()


#: how close to a decision level the float model's value must be for a
#: disagreement to count as a tie that float rounding decides (the scales'
#: 2^-16 rounding and float32 sums move values by about 1e-4)
TIE = 2e-3


def assert_exact(art, model, x):
    """Layer by layer, the integer layer fed the float model's own input to
    it makes the float model's decisions, except where the float value lies
    within :data:`TIE` of a decision level; the same for the argmax. A bias
    or BatchNorm that export dropped or mis-folded moves decisions far from
    any tie."""
    zs, acts, scores = _torch_activations(model, x)
    a = x.long().reshape(len(x), -1).numpy()
    for k, layer in enumerate(art.layers[:-1]):
        bits = layer.output_bits
        got = reference.layer_output(layer, a)
        want, z = acts[k], zs[k]
        if layer.op == "conv2d" and layer.pool > 1 and tuple(z.shape[1:]) != layer.out_shape:
            # the activation ran before the pool: pool the float map as the format does
            want, z = nn.functional.max_pool2d(want, layer.pool), nn.functional.max_pool2d(z, layer.pool)
        want = (want.reshape(len(x), -1).double() * 2 ** (bits - 1)).round().long().numpy()
        levels = torch.tensor([j * 2.0 ** (2 - bits) for j in range(1 - 2 ** (bits - 1), 2 ** (bits - 1))],
                              dtype=torch.float64)
        gap = (z.reshape(len(x), -1, 1) - levels).abs().min(-1).values.numpy()
        bad = want != got
        assert bad.mean() < 0.02, f"layer {k}: {bad.mean():.4f} of the activations differ"
        assert (gap[bad] < TIE).all(), f"layer {k}: a decision differs at {gap[bad].max():.4g} from any level"
        a = want
    picked, best = reference.layer_output(art.layers[-1], a).argmax(1), scores.argmax(1)
    rows = np.arange(len(scores))
    gap = scores[rows, best] - scores[rows, picked]
    assert (gap < TIE * np.abs(scores).max()).all(), "an argmax differs away from a tie"


OPTIONS = list(itertools.product([False, True], [False, True], ["bn", "bn-noaffine", "none"], [1, 2],
                                 ["tensor", "channel"], ["bnn", "bc"]))


@pytest.mark.parametrize("hidden_bias,out_bias,norm,act_bits,scale,quantizer", OPTIONS)
def test_dense_options_export_exactly(hidden_bias, out_bias, norm, act_bits, scale, quantizer):
    """Every combination of bias, BatchNorm (affine or not, or none),
    activation bits, scale granularity and quantizer: with 16 fraction bits
    the integer model's hidden activations and argmax are those of the
    float model on (nearly) every input; a bias or BN that export dropped
    or mis-folded would change a large share of them."""
    gen = torch.Generator().manual_seed(zlib.crc32(repr((hidden_bias, out_bias, norm, act_bits, scale,
                                                          quantizer)).encode()))
    torch.manual_seed(gen.initial_seed())
    kw = dict(scale=scale, quantizer=quantizer)
    act = (lambda: hwgen.ResidualActivation(act_bits)) if act_bits > 1 else hwgen.SignActivation
    norm_of = {"bn": lambda n: nn.BatchNorm1d(n), "bn-noaffine": lambda n: nn.BatchNorm1d(n, affine=False),
               "none": lambda n: nn.Identity()}[norm]
    model = nn.Sequential(lin(20, 24, hidden_bias, **kw), norm_of(24), act(),
                          lin(24, 16, hidden_bias, **kw), norm_of(16), act(),
                          lin(16, 6, out_bias, **kw))
    x = torch.randint(0, 16, (600, 20), generator=gen).float()
    _calibrate(model, x, gen)
    art = hwgen.export(model, input_bits=4, frac_bits=16)
    assert_exact(art, model, x)


@pytest.mark.parametrize("position", ["after-activation", "between-bn-and-activation", "before-bn"])
@pytest.mark.parametrize("bias", [False, True])
def test_conv_options_export_exactly(position, bias):
    """Conv layers with and without bias and the max-pool in each place
    export can take it: activation maps and argmax agree with torch."""
    gen = torch.Generator().manual_seed(7 + bias)
    torch.manual_seed(7 + bias)
    c = conv(1, 6, bias=bias, scale="channel")
    bn, act, pool = nn.BatchNorm2d(6), hwgen.SignActivation(), nn.MaxPool2d(2)
    order = {"after-activation": [c, bn, act, pool], "between-bn-and-activation": [c, bn, pool, act],
             "before-bn": [c, pool, bn, act]}[position]
    model = nn.Sequential(*order, nn.Flatten(), lin(54, 16, bias), nn.BatchNorm1d(16), hwgen.SignActivation(),
                          lin(16, 5, True))
    x = torch.randint(0, 8, (400, 1, 8, 8), generator=gen).float()
    _calibrate(model, x, gen)
    if position == "before-bn":
        with torch.no_grad():
            bn.weight.abs_()
    art = hwgen.export(model, input_bits=3, frac_bits=16, input_shape=(1, 8, 8))
    assert art.layers[0].op == "conv2d" and art.layers[0].pool == 2
    assert_exact(art, model, x)


def test_hwgen_models_export_through_the_generic_path(cnn_run):
    """hwgen's own HBBCNN goes through the same tracer; its artifact equals
    the one the CLI path (export_model) gives."""
    from hwgen.core import artifact
    from hwgen.training.exporter import export_model
    tm, info = cnn_run["torch_model"], cnn_run["info"]
    a = export_model(tm, info, info["input"]["bits"])
    b = hwgen.export(tm, input_bits=info["input"]["bits"], meta={"training": info})
    assert artifact.dumps(a) == artifact.dumps(b) == artifact.dumps(cnn_run["model"])


# -- the integer side needs no torch -----------------------------------------------------------------------------

def test_the_integer_side_runs_with_torch_blocked(digits_run, tmp_path):
    """With torch made unimportable: import hwgen, load an artifact, run
    the integer predict, generate RTL and read its manifest."""
    x = digits_run["data"].x_test[:20]
    np.save(tmp_path / "x.npy", x)
    expected = digits_run["model"].predict(x)
    np.save(tmp_path / "scores.npy", expected)
    script = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None            # any 'import torch' now fails
        import numpy as np
        import hwgen
        art = hwgen.load({str(digits_run['root'] / 'model.hwgen')!r})
        x = np.load({str(tmp_path / 'x.npy')!r})
        assert (art.predict(x) == np.load({str(tmp_path / 'scores.npy')!r})).all()
        m = hwgen.generate_rtl(art, {str(tmp_path / 'rtl')!r})
        assert hwgen.Manifest.read({str(tmp_path / 'rtl')!r}).design == m.design
        assert not any(k == "torch" or k.startswith("torch.") for k in sys.modules if sys.modules[k] is not None)
        try:
            hwgen.export
        except ImportError:
            print("export needs torch")
        print("ok")
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["export", "needs", "torch", "ok"]
