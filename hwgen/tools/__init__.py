"""The external tools: Yosys synthesis (``synth``), nextpnr place and route
(``timing``), cocotb simulation (``sim``), Yosys SAT proofs (``equiv``), and
what each hardware target is (``targets``). No torch.
"""
