"""Exploration on top of the tools: one measurement of a design
(``measure``), folding under a LUT budget and the design choice
(``budget``), the datapath by measured area (``datapath``), area per
bitwidth class (``breakdown``) and grids of trained networks (``sweep``).
"""
