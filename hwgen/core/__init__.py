"""The integer contract in the middle of the pipeline: the artifact
(``artifact``), its golden model (``reference``), and the values that say
how it becomes hardware (``design``) and what the hardware is
(``manifest``). numpy only: no torch, no Amaranth.
"""
