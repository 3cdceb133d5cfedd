"""The torch side: HBB quantizers (``quant``), layers and models (``nn``),
training (``train``), datasets (``data``, numpy only) and the export of a
trained model to the integer artifact (``exporter``).

Importing this package imports nothing heavy; ``quant``, ``nn``, ``train``
and ``exporter`` import torch.
"""
