"""QONNX in and out: Brevitas models trained here go through export_qonnx ->
``hwgen import`` -> RTL with 0 simulation mismatches; hwgen's own models go
out through ``hwgen export-onnx`` and qonnx's ``execute_onnx`` gives the
golden model's integer scores on every test image; hwgen -> QONNX -> hwgen
is byte-identical; whatever cannot be represented exactly is refused."""
import warnings

import numpy as np
import pytest

from conftest import assert_clean_error, hwgen, random_cnn, random_model
from hwgen.core import artifact
from hwgen.errors import HwgenError

onnx = pytest.importorskip("onnx")
pytest.importorskip("qonnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from qonnx.core.modelwrapper import ModelWrapper  # noqa: E402
from qonnx.core.onnx_exec import execute_onnx  # noqa: E402
from qonnx.transformation.infer_shapes import InferShapes  # noqa: E402

from hwgen.interop import from_qonnx, to_qonnx  # noqa: E402

DOMAIN = "qonnx.custom_op.general"


def batched(model, n):
    """``model`` (batch 1) with a batch of ``n``: one execute_onnx call for a whole split."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    del m.graph.value_info[:]
    constants = {i.name for i in m.graph.initializer}
    for v in list(m.graph.input) + list(m.graph.output):
        if v.name not in constants:
            v.type.tensor_type.shape.dim[0].dim_value = n
    return ModelWrapper(m).transform(InferShapes())


def run_qonnx(model, x, shape):
    """execute_onnx's output for the float inputs ``x`` (``[N, ...]``), reshaped to ``[1, *shape]`` rows."""
    w = batched(model, len(x))
    inp = next(i.name for i in w.graph.input if w.get_initializer(i.name) is None)
    out = execute_onnx(w, {inp: np.asarray(x, np.float32).reshape(len(x), *shape)})
    return out[w.graph.output[0].name].reshape(len(x), -1).astype(np.float64)


def input_shape(art):
    first = art.layers[0]
    return tuple(first.in_shape) if first.op == "conv2d" else (art.input_features,)


# -- hwgen -> QONNX ---------------------------------------------------------------------------------------------

def test_the_demo_runs_in_qonnx_to_the_golden_scores_on_every_test_image(digits_run):
    art, data = digits_run["model"], digits_run["data"]
    got = run_qonnx(to_qonnx(art), data.x_test, input_shape(art))
    assert np.array_equal(got, art.predict(data.x_test).astype(np.float64))


def test_the_cnn_runs_in_qonnx_to_the_golden_scores_on_every_test_image(cnn_run):
    art, data = cnn_run["model"], cnn_run["data"]
    assert art.layers[0].op == "conv2d" and any(layer.pool > 1 for layer in art.layers)
    got = run_qonnx(to_qonnx(art), data.x_test, input_shape(art))
    assert np.array_equal(got, art.predict(data.x_test).astype(np.float64))


def kbit_model(rng):
    """A random MLP whose first layer gives 2-bit activations (3 thresholds per neuron)."""
    art = random_model(rng, [12, 7, 5, 4], input_bits=3)
    layer = art.layers[0]
    lo, hi = layer.bounds()
    layer.threshold = np.sort(np.stack([rng.integers(l - 1, h + 2, size=3) for l, h in zip(lo, hi)]), axis=1)
    layer.output_bits = 2
    art.layers[1].input_bits = 2
    artifact._validate(art)
    return art


@pytest.mark.parametrize("case", ["mlp", "kbit", "cnn", "cnn-first-dense"])
def test_random_models_run_in_qonnx_to_the_golden_scores_and_round_trip(case):
    rng = np.random.default_rng(7)
    art = {"mlp": lambda: random_model(rng, [16, 9, 6, 4], input_bits=4),
           "kbit": lambda: kbit_model(rng),
           "cnn": lambda: random_cnn(rng, (2, 7, 6), [(3, (3, 2), 2), (4, (2, 2), 1)], [6, 3], input_bits=2),
           "cnn-first-dense": lambda: random_cnn(rng, (1, 5, 5), [(4, (2, 2), 2)], [5], input_bits=3)}[case]()
    assert any((layer.direction == -1).any() for layer in art.layers[:-1])
    model = to_qonnx(art)
    x = rng.integers(0, 2 ** art.input_bits, size=(200, art.input_features))
    x[0], x[1] = 0, 2 ** art.input_bits - 1
    assert np.array_equal(run_qonnx(model, x, input_shape(art)), art.predict(x).astype(np.float64))
    assert artifact.dumps(from_qonnx(model)) == artifact.dumps(art)


def test_the_round_trip_is_byte_identical_through_files(digits_run, cnn_run, tmp_path):
    for name, art in (("demo", digits_run["model"]), ("cnn", cnn_run["model"])):
        artifact.save(art, tmp_path / f"{name}.hwgen")
        proc = hwgen("export-onnx", tmp_path / f"{name}.hwgen", "-o", tmp_path / f"{name}.onnx")
        assert proc.returncode == 0, proc.stderr
        proc = hwgen("import", tmp_path / f"{name}.onnx", "-o", tmp_path / f"{name}.back.hwgen")
        assert proc.returncode == 0, proc.stderr
        assert (tmp_path / f"{name}.back.hwgen").read_bytes() == (tmp_path / f"{name}.hwgen").read_bytes()
        again = hwgen("export-onnx", tmp_path / f"{name}.back.hwgen", "-o", tmp_path / f"{name}.again.onnx")
        assert again.returncode == 0
        assert (tmp_path / f"{name}.again.onnx").read_bytes() == (tmp_path / f"{name}.onnx").read_bytes()


def test_the_export_passes_the_checkers_and_shows_every_weights_bits(digits_run):
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.util.cleanup import cleanup_model
    art = digits_run["model"]
    model = to_qonnx(art)
    onnx.checker.check_model(model, full_check=True)
    w = cleanup_model(ModelWrapper(model)).transform(InferDataTypes())
    acts = [n.output[0] for n in w.graph.node if n.op_type == "MultiThreshold"]
    assert len(acts) == len(art.layers) - 1
    assert all(w.get_tensor_datatype(t).name == "BIPOLAR" for t in acts)
    props = {p.key: p.value for p in model.metadata_props}
    for layer in art.layers:
        digits = np.frombuffer(props[f"hwgen.nbits.{layer.name}"].encode(), np.uint8) - ord("0")
        assert np.array_equal(digits.reshape(layer.nbits.shape), layer.nbits)
        # the masks are the planes' zeros: a weight's bits = its nonzero ternary planes
        planes = [numpy_helper.to_array(next(i for i in model.graph.initializer
                                             if i.name == f"{layer.name}.plane{b + 1}.weight"))
                  for b in range(layer.max_bits)]
        assert np.array_equal(sum(np.abs(p) for p in planes).T, layer.nbits)


def test_an_export_float32_cannot_hold_is_refused():
    rng = np.random.default_rng(1)
    art = random_model(rng, [8, 4, 3], input_bits=16)
    art.layers[0].alpha[:] = 2 ** 12
    with pytest.raises(HwgenError, match="2\\^24 that float32 holds exactly"):
        to_qonnx(art)


# -- QONNX graphs built by hand: the exact semantics at every tie ----------------------------------------------

class Graph:
    """A small QONNX graph, node by node."""

    def __init__(self, shape):
        self.nodes, self.inits, self.shape, self.n = [], [], shape, 0

    def const(self, value, dtype=np.float32):
        self.n += 1
        name = f"c{self.n}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op, inputs, domain="", **attrs):
        self.n += 1
        out = f"t{self.n}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op}_{self.n}", domain=domain, **attrs))
        return out

    def quant(self, x, scale, zp, bits, signed, narrow=0, mode="ROUND"):
        return self.op("Quant", [x, self.const(scale), self.const(zp), self.const(bits)], DOMAIN, signed=signed,
                       narrow=narrow, rounding_mode=mode)

    def model(self, out, n_out):
        self.nodes[-1].output[0] = "out"
        graph = helper.make_graph(self.nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                  [1, *self.shape])],
                                  [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, n_out])], self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(DOMAIN, 1)])
        m.ir_version = 8
        return ModelWrapper(m).transform(InferShapes()).model


def all_codes(n, bits):
    return np.array(np.meshgrid(*[np.arange(2 ** bits)] * n, indexing="ij")).reshape(n, -1).T


def quantized_mlp(mode="ROUND", act_bits=2, signed_act=0, relu=True, bn=True, final_bias=None):
    """3 2-bit inputs -> 4 neurons (3-bit integer weights, scale 1/2, so sums land on .5 ties) ->
    [BN] [Relu] -> act_bits Quant -> 3 ternary scores."""
    rng = np.random.default_rng(3)
    g = Graph((3,))
    x = g.quant("x", 1.0, 0.0, 2, 0)
    w = g.quant(g.const(rng.integers(-4, 4, size=(3, 4)).astype(np.float32)), 0.5, 0.0, 3, 1)
    y = g.op("MatMul", [x, w])
    y = g.op("Add", [y, g.const([0.25, -0.5, 0.0, 0.75])])
    if bn:
        y = g.op("BatchNormalization", [y, g.const([1.0, -2.0, 0.5, 4.0]), g.const([0.5, 0.0, -0.25, 1.0]),
                                        g.const([0.0, 0.5, 1.0, -1.0]), g.const([0.75, 3.0, 0.25, 1.0])],
                 epsilon=0.25)
    if relu:
        y = g.op("Relu", [y])
    y = g.quant(y, 0.5, 0.0, act_bits, signed_act, mode=mode)
    w2 = g.quant(g.const(rng.integers(-1, 2, size=(4, 3)).astype(np.float32)), 0.25, 0.0, 2, 1, narrow=1)
    y = g.op("MatMul", [y, w2])
    if final_bias is not None:
        y = g.op("Add", [y, g.const(final_bias)])
    return g.model(y, 3)


@pytest.mark.parametrize("mode", ["ROUND", "FLOOR", "CEIL", "HALF_UP", "HALF_DOWN", "UP", "DOWN"])
@pytest.mark.parametrize("variant", ["relu-bn", "signed-no-relu", "no-bn"])
def test_quantizer_levels_match_the_reference_executor_on_every_input(mode, variant):
    model = quantized_mlp(mode, signed_act=variant == "signed-no-relu", relu=variant != "signed-no-relu",
                          bn=variant != "no-bn", act_bits=2 if variant != "no-bn" else 3)
    art = from_qonnx(model)
    x = all_codes(3, 2)
    ref = run_qonnx(model, x, (3,))
    unit = art.meta["imported"]["score_unit"]
    np.testing.assert_allclose(art.predict(x) * unit, ref, rtol=0, atol=1e-6)


def test_a_float_score_bias_is_rounded_with_a_note_and_an_integer_one_is_exact():
    exact = from_qonnx(quantized_mlp(final_bias=[0.25, -0.75, 0.5]))
    assert "notes" not in exact.meta["imported"]
    x = all_codes(3, 2)
    ref = run_qonnx(quantized_mlp(final_bias=[0.25, -0.75, 0.5]), x, (3,))
    np.testing.assert_allclose(exact.predict(x) * exact.meta["imported"]["score_unit"], ref, atol=1e-6)
    rounded = from_qonnx(quantized_mlp(final_bias=[0.1, -0.3, 0.7]))
    assert "rounded to 2^-8" in rounded.meta["imported"]["notes"][0]


@pytest.mark.parametrize("values,bits", [((-1, 0, 1), 1), ((-3, -1, 1, 3), 2), ((-3, -2, -1, 0, 1, 2, 3), 2),
                                         ((-4, -3, -2, -1, 0, 1, 2, 3), 3), ((-6, -2, 0, 2, 4), 2)])
def test_integer_weights_become_the_fewest_exact_planes(values, bits):
    from hwgen.interop.qonnx_import import _decompose
    nonzero = tuple(v for v in values if v)
    alphas, table = _decompose(nonzero)
    assert len(alphas) == bits
    for v in nonzero:
        n, signs = table[v]
        assert sum(s * a for s, a in zip(signs, alphas[:n])) == v


def test_weights_wider_than_three_planes_are_refused():
    from hwgen.interop.qonnx_import import _decompose
    assert _decompose(tuple(range(-8, 0)) + tuple(range(1, 8))) is None
    g = Graph((16,))
    x = g.quant("x", 1.0, 0.0, 2, 0)
    w = g.quant(g.const(np.tile(np.arange(-8, 8, dtype=np.float32)[:, None], (1, 2))), 1.0, 0.0, 4, 1)
    with pytest.raises(HwgenError, match="need more than 3 bit-planes"):
        from_qonnx(g.model(g.op("MatMul", [x, w]), 2))


# -- refusals ----------------------------------------------------------------------------------------------------

def softmax_in_the_middle():
    g = Graph((3,))
    x = g.quant("x", 1.0, 0.0, 2, 0)
    y = g.op("MatMul", [x, g.op("BipolarQuant", [g.const(np.ones((3, 4), np.float32)), g.const(1.0)], DOMAIN)])
    y = g.op("Softmax", [y], axis=1)
    y = g.op("BipolarQuant", [y, g.const(1.0)], DOMAIN)
    return g.model(g.op("MatMul", [y, g.op("BipolarQuant", [g.const(np.ones((4, 2), np.float32)),
                                                              g.const(1.0)], DOMAIN)]), 2)


def float_matmul():
    g = Graph((3,))
    x = g.quant("x", 1.0, 0.0, 2, 0)
    return g.model(g.op("MatMul", [x, g.const(np.full((3, 2), 0.3, np.float32))]), 2)


def residual_add():
    g = Graph((4,))
    x = g.quant("x", 1.0, 0.0, 2, 0)
    w = lambda: g.op("BipolarQuant", [g.const(np.eye(4, dtype=np.float32)), g.const(1.0)], DOMAIN)
    y = g.op("BipolarQuant", [g.op("MatMul", [x, w()]), g.const(1.0)], DOMAIN)
    z = g.op("MatMul", [y, w()])
    return g.model(g.op("Add", [g.op("MatMul", [x, w()]), z]), 4)


def fractional_bitwidth():
    g = Graph((3,))
    x = g.quant("x", 1.0, 0.0, 2.5, 0)
    return g.model(g.op("MatMul", [x, g.quant(g.const(np.ones((3, 2), np.float32)), 1.0, 0.0, 2, 1)]), 2)


@pytest.mark.parametrize("build,needle", [
    (softmax_in_the_middle, "op 'Softmax' (domain '') is not supported"),
    (float_matmul, "its weight is not quantized (a float weight)"),
    (residual_add, "not products of one quantized input (a residual Add is not supported)"),
    (fractional_bitwidth, "bitwidth 2.5 is not an integer"),
])
def test_graphs_hwgen_cannot_represent_exactly_are_refused_by_name(build, needle, tmp_path):
    onnx.save(build(), tmp_path / "m.onnx")
    proc = hwgen("import", tmp_path / "m.onnx", "-o", tmp_path / "m.hwgen")
    assert_clean_error(proc, needle)
    assert not (tmp_path / "m.hwgen").exists()


def test_without_the_extra_both_commands_name_it(tmp_path, digits_run):
    import subprocess
    import sys
    artifact.save(digits_run["model"], tmp_path / "m.hwgen")
    for argv in (["import", "x.onnx", "-o", "y.hwgen"], ["export-onnx", str(tmp_path / "m.hwgen"), "-o", "y.onnx"]):
        code = f"import sys; sys.modules['onnx'] = None; from hwgen.cli import main; sys.exit(main({argv!r}))"
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
        assert_clean_error(proc, "pip install 'hwgen[onnx]'", code=3)
        assert not (tmp_path / "y.onnx").exists() and not (tmp_path / "y.hwgen").exists()


# -- mutated files -------------------------------------------------------------------------------------------------

def mutants(model, rng):
    """``(what, bytes)``: truncations, byte flips, initializer shape and value edits, dropped inputs,
    bitwidths out of range."""
    blob = model.SerializeToString()
    for cut in sorted(set(rng.integers(1, len(blob), size=40).tolist())):
        yield f"truncated at {cut}", blob[:cut]
    for pos in rng.integers(0, len(blob), size=60):
        b = bytearray(blob)
        b[pos] ^= 1 << int(rng.integers(0, 8))
        yield f"bit flip at {pos}", bytes(b)
    for i, init in enumerate(model.graph.initializer):
        arr = numpy_helper.to_array(init)
        for what, new in (("extra row", np.concatenate([arr.reshape(-1), [1.0]]).astype(arr.dtype)),
                          ("reshaped", arr.reshape(-1)[:max(1, arr.size // 2)]),
                          ("nan", np.full(arr.shape, np.nan, arr.dtype)),
                          ("huge", np.full(arr.shape, 3e38, arr.dtype)),
                          ("negative", -np.abs(arr) - 1)):
            m = onnx.ModelProto()
            m.CopyFrom(model)
            m.graph.initializer[i].CopyFrom(numpy_helper.from_array(new, init.name))
            yield f"{init.name} {what}", m.SerializeToString()
    for i, node in enumerate(model.graph.node):
        m = onnx.ModelProto()
        m.CopyFrom(model)
        del m.graph.node[i].input[-1]
        yield f"{node.name} lost its last input", m.SerializeToString()
        m = onnx.ModelProto()
        m.CopyFrom(model)
        m.graph.node[i].input[0] = "nowhere"
        yield f"{node.name} reads a missing tensor", m.SerializeToString()
    for bits in (0, 33, -1, 1e9):
        for i, init in enumerate(model.graph.initializer):
            if init.name.endswith("bitwidth"):
                m = onnx.ModelProto()
                m.CopyFrom(model)
                m.graph.initializer[i].CopyFrom(numpy_helper.from_array(np.float32(bits), init.name))
                yield f"{init.name} = {bits}", m.SerializeToString()


def input_codes(art, x):
    """The codes the artifact reads for the graph's float inputs ``x``: its input quantizer
    (``meta.input_quant``; hwgen's own exports read the integers as they are)."""
    q = art.meta.get("input_quant")
    if q is None:
        return x
    assert q["op"] == "Quant" and q["rounding_mode"] == "ROUND"
    lo = q["code_offset"]
    hi = lo + 2 ** art.input_bits - 1
    v = np.asarray(x, np.float32) / np.float32(q["scale"]) + np.float32(q["zero_point"])
    return (np.round(np.clip(v, lo, hi)) - lo).astype(np.int64)


def test_mutated_qonnx_files_give_a_clean_error_or_an_exact_artifact(tmp_path):
    rng = np.random.default_rng(11)
    art = random_cnn(rng, (1, 5, 5), [(2, (2, 2), 2)], [3], input_bits=2)
    model = to_qonnx(art)
    x = rng.integers(0, 4, size=(64, art.input_features))
    outcomes = {"error": 0, "loaded": 0}
    count = 0
    for what, blob in mutants(model, rng):
        count += 1
        path = tmp_path / "m.onnx"
        path.write_bytes(blob)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                got = from_qonnx(path)
            except HwgenError as exc:
                assert "\n" not in str(exc), (what, str(exc))
                outcomes["error"] += 1
                continue
        # a mutant that still loads is a valid model: the artifact computes what the graph does
        outcomes["loaded"] += 1
        ref = run_qonnx(onnx.load(str(path)), x, input_shape(art))
        unit = got.meta.get("imported", {}).get("score_unit", 1)
        np.testing.assert_allclose(got.predict(input_codes(got, x)) * unit, ref, rtol=1e-6, err_msg=what)
    assert count >= 200 and outcomes["error"] >= 150, outcomes
    # and through the command line: one line, exit 2, nothing written
    path.write_bytes(model.SerializeToString()[:500])
    proc = hwgen("import", path, "-o", tmp_path / "out.hwgen")
    assert_clean_error(proc, "is not a readable ONNX model")
    assert not (tmp_path / "out.hwgen").exists()


# -- Brevitas -> hwgen -> verified RTL --------------------------------------------------------------------------

def brevitas_model(kind):
    import brevitas.nn as qnn
    from brevitas.inject.enum import ScalingImplType
    from brevitas.quant import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst, \
        Uint8ActPerTensorFloat
    from torch import nn

    class Pixels(Uint8ActPerTensorFloat):   # 5-bit unsigned pixels 0..31, scale 1: the digits' integers
        bit_width = 5
        scaling_impl_type = ScalingImplType.CONST
        scaling_init = 31.0

    binary = dict(weight_quant=SignedBinaryWeightPerTensorConst)
    if kind == "binary":
        return nn.Sequential(qnn.QuantIdentity(act_quant=Pixels, return_quant_tensor=True),
                             qnn.QuantLinear(64, 32, bias=False, **binary), nn.BatchNorm1d(32),
                             qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst),
                             qnn.QuantLinear(32, 10, bias=False, **binary))
    if kind == "2bit-weights":    # ternary weights (2 bits, narrow range), +-1 activations
        return nn.Sequential(qnn.QuantIdentity(act_quant=Pixels, return_quant_tensor=True),
                             qnn.QuantLinear(64, 32, bias=True, weight_bit_width=2), nn.BatchNorm1d(32),
                             qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst),
                             qnn.QuantLinear(32, 10, bias=False, weight_bit_width=2))
    if kind == "2bit":
        return nn.Sequential(qnn.QuantIdentity(act_quant=Pixels, return_quant_tensor=True),
                             qnn.QuantLinear(64, 32, bias=True, weight_bit_width=2), nn.BatchNorm1d(32),
                             qnn.QuantReLU(bit_width=2),
                             qnn.QuantLinear(32, 10, bias=False, weight_bit_width=2))
    return nn.Sequential(qnn.QuantIdentity(act_quant=Pixels, return_quant_tensor=True),
                         qnn.QuantConv2d(1, 8, 3, bias=False, **binary), nn.BatchNorm2d(8),
                         qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst), nn.MaxPool2d(2),
                         nn.Flatten(), qnn.QuantLinear(8 * 3 * 3, 10, bias=False, **binary))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["binary", "2bit-weights", "2bit", "cnn"])
def test_brevitas_models_import_exactly_and_their_rtl_simulates_with_no_mismatch(kind, tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("brevitas")
    from brevitas.export import export_qonnx
    from hwgen.training.data import load_dataset
    data = load_dataset("digits")
    torch.manual_seed(0)
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = brevitas_model(kind)
        shape = (1, 8, 8) if kind == "cnn" else (64,)
        xt = torch.tensor(data.x_train, dtype=torch.float32).reshape(-1, *shape)
        yt = torch.tensor(data.y_train)
        opt = torch.optim.Adam(model.parameters(), 1e-2)
        for _ in range(8):
            for idx in torch.randperm(len(xt)).split(64):
                loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            ref = model(torch.tensor(data.x_test, dtype=torch.float32).reshape(-1, *shape)).double().numpy()
        export_qonnx(model, torch.zeros(1, *shape), export_path=str(tmp_path / "m.onnx"), dynamo=False)
    assert (ref.argmax(1) == data.y_test).mean() > 0.7          # it learned something
    proc = hwgen("import", tmp_path / "m.onnx", "-o", tmp_path / "m.hwgen")
    assert proc.returncode == 0, proc.stderr
    art = artifact.load(tmp_path / "m.hwgen")
    scores = art.predict(data.x_test)
    # the integer scores are Brevitas's, up to the common scale (float32 rounding aside) ...
    np.testing.assert_allclose(scores * art.meta["imported"]["score_unit"], ref, rtol=1e-5, atol=1e-5)
    # ... so the argmax is too, wherever the exact scores have one maximum; at an exact tie float32
    # noise picks Brevitas's class, which is always one of the tied ones
    top = scores == scores.max(1, keepdims=True)
    unique = top.sum(1) == 1
    assert np.array_equal(scores.argmax(1)[unique], ref.argmax(1)[unique])
    assert top[np.arange(len(ref)), ref.argmax(1)].all()
    # the reference executor agrees with the artifact too
    got = run_qonnx(onnx.load(str(tmp_path / "m.onnx")), data.x_test, shape)
    np.testing.assert_allclose(scores * art.meta["imported"]["score_unit"], got, rtol=1e-5, atol=1e-5)
    proc = hwgen("rtl", tmp_path / "m.hwgen", "-o", tmp_path / "rtl")
    if kind == "2bit":   # the golden model runs 2-bit activations; the RTL generator does not build them yet
        assert_clean_error(proc, "produces 2-bit activations")
        return
    assert proc.returncode == 0, proc.stderr
    proc = hwgen("sim", tmp_path / "m.hwgen", "--rtl", tmp_path / "rtl", "--dataset", "digits")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "360 vectors, 0 mismatches" in proc.stdout
