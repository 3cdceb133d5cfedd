"""cocotb side of the batch harness (rtl_templates/hwgen_tb.v): the HDL streams
every vector and records every output; Python only drives the clock and waits
for ``done``, so no Python code runs per cycle. ``hwgen.tools.sim`` compares the
outputs with the golden reference afterwards.

While it waits, the test wakes about once a second of wall time (the chunk of
simulated time adapts to the simulator's speed) and writes how many outputs
have come out to ``HWGEN_SIM_PROGRESS``, which ``hwgen.tools.sim`` turns into
progress lines: a full test split on Icarus takes hours.
"""
import json
import os
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import First, RisingEdge, Timer

PERIOD_NS = 10


@cocotb.test()
async def stream_all_vectors(dut):
    t0 = time.perf_counter()
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    progress = os.environ.get("HWGEN_SIM_PROGRESS")
    chunk = 1024                     # clock cycles per wake-up, adapted to about 1 s of wall time
    done = RisingEdge(dut.done)
    while not int(dut.done.value):
        t = time.perf_counter()
        fired = await First(done, Timer(chunk * PERIOD_NS, unit="ns"))
        if fired is done:
            break
        dt = time.perf_counter() - t
        chunk = max(64, min(1 << 22, chunk * 2 if dt < 0.5 else chunk // 2 if dt > 2 else chunk))
        if progress:
            with open(progress + ".tmp", "w") as f:
                json.dump({"received": int(dut.received.value), "cycles": int(dut.cycles.value),
                           "wall_s": time.perf_counter() - t0}, f)
            os.replace(progress + ".tmp", progress)
    elapsed = time.perf_counter() - t0
    with open(os.environ["HWGEN_SIM_RESULT"], "w") as f:
        # timed_out: bit k for the top's k-th design under test (hwgen.tools.sim._batch_top)
        json.dump({"cycles": int(dut.cycles.value), "timed_out": bool(int(dut.timed_out.value)),
                   "timed_out_mask": int(dut.timed_out.value), "wall_s": elapsed}, f)
