"""hwgen: hardware co-design for heterogeneous-bitwidth binarized neural networks.

Data flows one way: train -> export -> artifact -> reference / rtl -> synth / sim -> report.

The public API (docs/api.md)::

    import hwgen
    art = hwgen.export(model, input_bits=5)          # any nn.Module chain of hwgen parts (torch)
    art.save("model.hwgen"); art = hwgen.load("model.hwgen")
    scores = art.predict(x)                          # int64 golden model, no torch
    manifest = hwgen.generate_rtl(art, "rtl/", hwgen.Design(pipeline=1))
    hwgen.synthesize("rtl/", ["ice40"]); hwgen.simulate(art, "rtl/", x, labels=y)

``import hwgen``, loading an artifact and the whole artifact -> RTL -> synth
-> sim -> equiv path never import torch; the training-side names
(``hwgen.export``, ``hwgen.HBBLinear``, ...) import it when first used.
"""
import importlib

from .core.artifact import Artifact, Layer, load
from .core.design import Design
from .core.manifest import Manifest
from .errors import ArtifactError, HwgenError, NotInstalledError, VerificationError
from .flowconfig import FlowConfig

__version__ = "0.2.0.dev0"   # pyproject.toml reads it (the one place it is set)

#: name -> module of the names that load on first use (the torch side, and
#: the tool wrappers whose imports are slow)
_LAZY = {
    **dict.fromkeys(["generate_rtl", "synthesize", "place_and_route", "simulate", "SimResult", "prove"], "api"),
    "run_flow": "report",
    **dict.fromkeys(["from_qonnx", "to_qonnx"], "interop"),
    "export": "training.exporter",
    **dict.fromkeys(["HBBLinear", "HBBConv2d", "SignActivation", "ResidualActivation", "LogitScale", "HBBMLP",
                     "HBBCNN", "finish_training", "set_progress"], "training.nn"),
    **dict.fromkeys(["QUANTIZERS", "get_quantizer", "Quantizer"], "training.quant"),
    **dict.fromkeys(["load_dataset", "DATASETS"], "training.data"),
}

__all__ = ["__version__", "Artifact", "Layer", "load", "Design", "Manifest", "FlowConfig", "HwgenError",
           "ArtifactError", "VerificationError", "NotInstalledError", *_LAZY]


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hwgen' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
