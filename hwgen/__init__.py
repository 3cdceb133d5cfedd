"""hwgen: hardware co-design for heterogeneous-bitwidth binarized neural networks.

Data flows one way: train -> export -> artifact -> reference / rtl -> synth / sim -> report.
"""
__version__ = "0.1.0"
