"""Integer artifact -> QONNX model (``hwgen export-onnx``, :meth:`Artifact.to_qonnx`).

Each layer is written as what it is, a sum of bit-planes times their
scales, so a reader sees every weight's bits:

* the input quantizer: ``Quant`` (scale 1, zero point 0, ``input_bits``
  unsigned): the codes the hardware reads;
* per bit-plane ``b``: a ternary weight (``m_b * s_b`` in -1, 0, +1, through
  ``Quant`` with 2 bits, signed, narrow range), a ``MatMul`` (or ``Conv``), and
  a ``Mul`` by the plane's integer scales ``alpha[:, b]``; the planes' products
  are added by ``Sum``;
* a threshold layer: a ``Mul`` by ``direction`` where a neuron fires at
  ``Y <= t``, then ``MultiThreshold`` (``out_scale`` 2, ``out_bias``
  ``-(2^K - 1)``), which gives the K-bit odd levels ``2c - (2^K - 1)`` the
  next layer reads; ``MaxPool`` for a conv layer's pool;
* the score layer: its bias, by ``Add``. The graph's output is the integer
  class scores (as floats).

``metadata_props`` carry ``hwgen`` (JSON: format version, layer names,
``scale_frac_bits``, the artifact's ``meta``) and ``hwgen.nbits.<layer>`` (the
per-weight bit counts, one digit per weight, row-major ``[out, in]``), which
is what lets :func:`~hwgen.interop.from_qonnx` read the model back
byte-identical. Every value in the graph is an integer below 2^24 in
magnitude, so float32 holds it exactly; a model whose sums could leave that
range is refused.
"""
import importlib.metadata
import json

import numpy as np

from ..core import artifact as _artifact
from ..errors import HwgenError
from .qonnx_import import _nbits_text, require_onnx

__all__ = ["to_qonnx", "save_qonnx", "OPSET"]

#: the ONNX opset the graph uses (and the qonnx custom-op domain, version 1)
OPSET = 13
_DOMAIN = "qonnx.custom_op.general"
_FLOAT_EXACT = 2 ** 24      # float32 holds every integer below this exactly


def _check_exact(layer, lo_in, hi_in):
    """Refuse a layer with a partial sum, threshold or score float32 cannot hold exactly."""
    biggest = max(abs(lo_in), abs(hi_in))
    planes = layer.signed_planes()
    for b in range(layer.max_bits):
        partial = np.abs(planes[b]).sum(axis=1) * layer.alpha[:, b] * biggest
        if partial.max(initial=0) >= _FLOAT_EXACT:
            raise HwgenError(f"layer {layer.name}: plane {b + 1}'s sums reach {int(partial.max())}, beyond the "
                             f"2^24 that float32 holds exactly; this model cannot be written as a float32 QONNX "
                             f"graph without rounding")
    lo, hi = layer.bounds()
    extra = [layer.threshold] if layer.output == "threshold" else [layer.bias]
    worst = max(int(np.abs(lo).max()), int(np.abs(hi).max()), *(int(np.abs(v).max(initial=0)) + 1 for v in extra))
    if worst >= _FLOAT_EXACT:
        raise HwgenError(f"layer {layer.name}: its sums or thresholds reach {worst}, beyond the 2^24 that float32 "
                         f"holds exactly; this model cannot be written as a float32 QONNX graph without rounding")


def to_qonnx(art):
    """The QONNX ``onnx.ModelProto`` of ``art`` (an :class:`~hwgen.core.artifact.Artifact`):
    ``qonnx.core.onnx_exec.execute_onnx`` on it gives :meth:`Artifact.predict`'s integer
    scores. Needs the ``onnx`` extra."""
    require_onnx()
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    _artifact._validate(art)
    nodes, inits = [], []

    def const(name, array):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    def node(op, inputs, outputs, name, domain="", **attrs):
        nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=domain, **attrs))
        return outputs[0]

    first = art.layers[0]
    in_dims = [1, *first.in_shape] if first.op == "conv2d" else [1, art.input_features]
    x = node("Quant", ["global_in", const("input.scale", 1.0), const("input.zeropt", 0.0),
                       const("input.bitwidth", float(art.input_bits))], ["input.q"], "input.Quant",
             _DOMAIN, signed=0, narrow=0, rounding_mode="ROUND")
    lo_in, hi_in = 0, 2 ** art.input_bits - 1
    four_d = first.op == "conv2d"
    for layer in art.layers:
        _check_exact(layer, lo_in, hi_in)
        n = layer.name
        if layer.op == "dense" and four_d:
            x = node("Flatten", [x], [f"{n}.flat"], f"{n}.Flatten", axis=1)
        elif layer.op == "conv2d" and not four_d:
            inits.append(numpy_helper.from_array(np.array([1, *layer.in_shape], np.int64), f"{n}.shape"))
            x = node("Reshape", [x, f"{n}.shape"], [f"{n}.map"], f"{n}.Reshape")
        four_d = layer.op == "conv2d"
        channel = (1, layer.out_features, 1, 1) if four_d else (layer.out_features,)
        planes = layer.signed_planes()
        products = []
        for b in range(layer.max_bits):
            p = f"{n}.plane{b + 1}"
            w = planes[b].reshape(layer.out_features, *((layer.in_shape[0], *layer.kernel) if four_d else
                                                        (layer.in_features,)))
            wq = node("Quant", [const(f"{p}.weight", w if four_d else w.T), const(f"{p}.scale", 1.0),
                                const(f"{p}.zeropt", 0.0), const(f"{p}.bitwidth", 2.0)], [f"{p}.wq"],
                      f"{p}.Quant", _DOMAIN, signed=1, narrow=1, rounding_mode="ROUND")
            if four_d:
                y = node("Conv", [x, wq], [f"{p}.conv"], f"{p}.Conv", kernel_shape=list(layer.kernel),
                         strides=[1, 1], pads=[0, 0, 0, 0])
            else:
                y = node("MatMul", [x, wq], [f"{p}.matmul"], f"{p}.MatMul")
            products.append(node("Mul", [y, const(f"{p}.alpha", layer.alpha[:, b].reshape(channel))],
                                 [f"{p}.scaled"], f"{p}.Mul"))
        y = products[0] if len(products) == 1 else node("Sum", products, [f"{n}.sum"], f"{n}.Sum")
        if layer.output == "scores":
            node("Add", [y, const(f"{n}.bias", layer.bias)], ["global_out"], f"{n}.Add")
            break
        thr = layer.threshold.reshape(layer.out_features, -1).astype(np.int64)
        if (layer.direction < 0).any():
            y = node("Mul", [y, const(f"{n}.direction", layer.direction.astype(np.float32).reshape(channel))],
                     [f"{n}.directed"], f"{n}.direction.Mul")
            thr = thr * layer.direction.astype(np.int64)[:, None]
        k = layer.output_bits
        x = node("MultiThreshold", [y, const(f"{n}.thresholds", thr)], [f"{n}.act"], f"{n}.MultiThreshold",
                 _DOMAIN, out_dtype="BIPOLAR" if k == 1 else f"INT{k + 1}", out_scale=2.0,
                 out_bias=float(-(2 ** k - 1)), data_layout="NCHW" if four_d else "NC")
        if layer.op == "conv2d" and layer.pool > 1:
            x = node("MaxPool", [x], [f"{n}.pool"], f"{n}.MaxPool", kernel_shape=[layer.pool] * 2,
                     strides=[layer.pool] * 2)
        lo_in, hi_in = -(2 ** k - 1), 2 ** k - 1
    graph = helper.make_graph(nodes, "hwgen", [helper.make_tensor_value_info("global_in", TensorProto.FLOAT, in_dims)],
                              [helper.make_tensor_value_info("global_out", TensorProto.FLOAT, [1, art.n_classes])],
                              inits)
    try:
        version = importlib.metadata.version("hwgen")
    except importlib.metadata.PackageNotFoundError:
        version = ""
    model = helper.make_model(graph, producer_name="hwgen", producer_version=version,
                              opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(_DOMAIN, 1)])
    model.ir_version = 8
    info = {"format": _artifact.FORMAT, "version": _artifact.VERSION, "scale_frac_bits": art.scale_frac_bits,
            "layers": [layer.name for layer in art.layers], "meta": art.meta}
    props = {"hwgen": json.dumps(info, sort_keys=True)}
    props.update({f"hwgen.nbits.{layer.name}": _nbits_text(layer.nbits) for layer in art.layers})
    onnx.helper.set_model_props(model, props)
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes
    model = ModelWrapper(model).transform(InferShapes()).model    # shapes annotated: execute_onnx runs it as is
    onnx.checker.check_model(model)
    return model


def save_qonnx(art, path):
    """Write :func:`to_qonnx` of ``art`` to ``path`` atomically."""
    from ..core.fileio import write_bytes
    write_bytes(path, to_qonnx(art).SerializeToString(deterministic=True))
