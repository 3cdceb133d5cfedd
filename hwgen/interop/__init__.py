"""Interchange with other tools: QONNX in (:func:`from_qonnx`) and out (:func:`to_qonnx`).

Needs the ``onnx`` extra (``pip install 'hwgen[onnx]'``: onnx and qonnx);
nothing here imports torch.
"""
from .qonnx_export import save_qonnx, to_qonnx
from .qonnx_import import SUPPORTED_OPS, from_qonnx

__all__ = ["from_qonnx", "to_qonnx", "save_qonnx", "SUPPORTED_OPS"]
