"""cocotb diagnosis run: one vector (or image, pixel by pixel) through the network alone, recording each
layer's output (``stage0``, ``stage1``, ...) on every cycle it is valid (a
dense layer's once, a conv layer's once per output pixel), so ``hwgen.tools.sim``
can name the first layer and neuron that differ from the golden model. The
output is always ready, so nothing stalls and each valid cycle is one
transfer. Runs with waveforms on.
"""
import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge


@cocotb.test()
async def probe_layers(dut):
    with open(os.environ["HWGEN_SIM_JOB"]) as f:
        job = json.load(f)
    handles = {}
    for name in job["probes"]:
        try:
            handles[name] = (getattr(dut, name), getattr(dut, f"{name}_valid"))
        except AttributeError:  # e.g. a synthesized netlist that renamed the register
            pass
    Clock(dut.clk, 10, unit="ns").start()
    dut.i__valid.value = 0
    dut.o__ready.value = 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    words = [int(w, 16) for w in job["inputs"]]    # the vector, or a CNN's pixels
    seen, sent = {}, 0
    for _ in range(4 * job["latency"] + 16):
        await FallingEdge(dut.clk)
        dut.i__valid.value = int(sent < len(words))
        dut.i__payload.value = words[min(sent, len(words) - 1)]
        await ReadOnly()
        sent += int(sent < len(words) and dut.i__ready.value == 1)
        for name, (value, valid) in handles.items():
            if valid.value == 1 and value.value.is_resolvable:
                seen.setdefault(name, []).append(int(value.value))
        done = dut.o__valid.value == 1
        await RisingEdge(dut.clk)
        if done:
            break
    with open(os.environ["HWGEN_SIM_RESULT"], "w") as f:
        json.dump({"probes": seen}, f)
