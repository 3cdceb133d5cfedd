"""cocotb testbench: stream test vectors through the network, compare every
output with the integer golden reference.

Driven by ``hwgen.sim`` (cocotb_tools.runner); it reads its job from the JSON
file named by ``HWGEN_SIM_JOB`` and writes its findings to ``HWGEN_SIM_RESULT``.
Any mismatch fails the test, and the result file says which vectors failed.
"""
import json
import os
import random
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge


def _signed(value, width):
    return value - (1 << width) if value >> (width - 1) & 1 else value


def _decode(word, job):
    label = (word >> job["label_offset"]) & ((1 << job["label_width"]) - 1)
    w = job["score_width"]
    scores = [_signed((word >> (job["scores_offset"] + k * w)) & ((1 << w) - 1), w)
              for k in range(job["n_classes"])]
    return label, scores


@cocotb.test()
async def network_matches_reference(dut):
    with open(os.environ["HWGEN_SIM_JOB"]) as f:
        job = json.load(f)
    inputs, labels, scores = job["inputs"], job["labels"], job["scores"]
    n = len(inputs)
    rng = random.Random(job.get("seed", 0))
    stall = float(job.get("backpressure", 0.0))

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0

    sent, received, mismatches, first, out_labels = 0, 0, 0, [], []
    cycles, t0 = 0, time.perf_counter()
    limit = 4 * n + 100 + int(n / max(1e-9, 1 - stall)) * 2
    while received < n:
        await FallingEdge(dut.clk)
        dut.i__valid.value = int(sent < n)
        if sent < n:
            dut.i__payload.value = int(inputs[sent], 16)
        dut.o__ready.value = int(rng.random() >= stall)
        await ReadOnly()
        in_fire = sent < n and dut.i__ready.value == 1
        if dut.o__valid.value == 1 and dut.o__ready.value == 1:
            label, got = _decode(int(dut.o__payload.value), job)
            out_labels.append(label)
            if label != labels[received] or got != scores[received]:
                mismatches += 1
                if len(first) < 10:
                    first.append({"vector": received, "expected_label": labels[received],
                                  "got_label": label, "expected_scores": scores[received],
                                  "got_scores": got})
            received += 1
        await RisingEdge(dut.clk)
        sent += in_fire
        cycles += 1
        assert cycles < limit, f"pipeline stalled: {received}/{n} outputs after {cycles} cycles"

    elapsed = time.perf_counter() - t0
    with open(os.environ["HWGEN_SIM_RESULT"], "w") as f:
        json.dump({"vectors": n, "mismatches": mismatches, "first_mismatches": first, "labels": out_labels,
                   "cycles": cycles, "wall_s": elapsed}, f, indent=2)
    assert mismatches == 0, f"{mismatches} of {n} outputs differ from the golden reference"
