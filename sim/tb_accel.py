"""cocotb bench of the generated accelerator Verilog (run through sim/runner.py).

Driver: features frame by frame with random valid gaps. Monitor: result words with random
ready backpressure. Scoreboard: every logit, the class and the 32 gate counts against
quant/golden.py, bit-exactly. Optional: a reset in the middle of an inference, after which
all clips must come out right. Configuration comes from the JSON file named by
SPARKNET_TB_CONFIG; results go to the JSON file it names.
"""
from __future__ import annotations

import json
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, SimTimeoutError, with_timeout
from cocotb.utils import get_sim_time

from sparknet_hw.quant import golden
from sparknet_hw.rtl.record import decode_record, layer_names

CLOCK_NS = 10


class UnresolvedBits(AssertionError):
    """An output of the DUT carries X or Z bits: reading them as 0 would hide the bug."""


def resolved(handle) -> int:
    """The integer value of a DUT signal; X/Z bits fail with the signal's name."""
    value = handle.value
    if not value.is_resolvable:
        raise UnresolvedBits(f"{handle._name} has X/Z bits: {value}")
    return int(value)


def _cfg() -> dict:
    with open(os.environ["SPARKNET_TB_CONFIG"]) as fh:
        return json.load(fh)


async def drive(dut, clips, rng: random.Random, gaps: bool):
    for x in clips:
        F, T = x.shape
        for t in range(T):
            for f in range(F):
                if gaps and rng.random() < 0.05:
                    dut.features__valid.value = 0
                    await ClockCycles(dut.clk, rng.randint(1, 4))
                dut.features__payload.value = int(x[f, t]) & 0xFF
                dut.features__valid.value = 1
                while True:
                    await ReadOnly()
                    ready = resolved(dut.features__ready)
                    if not ready:
                        await RisingEdge(dut.features__ready)
                        continue
                    await RisingEdge(dut.clk)
                    break
        dut.features__valid.value = 0


async def monitor(dut, model, n: int, rng: random.Random, backpressure: bool, out: list):
    words = []
    while len(out) < n:
        ready = 1 if (not backpressure or rng.random() < 0.6) else 0
        dut.result__ready.value = ready
        await ReadOnly()
        if not resolved(dut.result__valid):
            await RisingEdge(dut.result__valid)
            continue
        payload = resolved(dut.result__payload)
        await RisingEdge(dut.clk)
        if ready:
            words.append(payload & 0xFFFFFFFF)
            if payload >> 32:
                record = decode_record(model, words)
                # sticky until the next inference starts, which waits for this record; a
                # synthesised netlist (sim/gate_level.py) has no such net: its SPRAM cell
                # models give X on a collision instead, which the comparison sees
                if hasattr(dut, "buffer_collision"):
                    record["buffer_collision"] = resolved(dut.buffer_collision)
                out.append(record)
                words = []


def compare(model, x, rec) -> list[str]:
    g = golden.run(model, x)
    errs = []
    for k, (hw, gd) in enumerate(zip(rec["logits"], g["logits"].tolist())):
        if hw != gd:
            errs.append(f"logit{k}: hw {hw} != golden {gd}")
    if rec.get("buffer_collision"):
        errs.append("a single-port activation buffer was read and written in one cycle")
    if rec["class"] != g["class"]:
        errs.append(f"class: hw {rec['class']} != golden {g['class']}")
    for f, (hw, gd) in enumerate(zip(rec["gate_counts"], g["gate_counts"].tolist())):
        if hw != gd:
            errs.append(f"gate_count{f}: hw {hw} != golden {gd}")
    # the issue counters too: every product with a non-zero activation, no more, no less
    for name, gd in golden.nonzero_products(model, g).items():
        hw = rec["layers"][name]["issued"]
        if hw != gd:
            errs.append(f"{name} issued MACs: hw {hw} != golden {gd}")
    return errs


def stall_location(dut, model) -> str:
    """Where the DUT was when the budget ran out: loading or sending (no inference running),
    or the layer the sequencer was on (sim/runner.py makes both nets visible in Verilator)."""
    try:
        running = resolved(dut.run)
        layer = resolved(dut.seq_cyc_layer)
    except (AttributeError, UnresolvedBits):
        return "the stalled layer is not visible in this build"
    if not running:
        return "no inference running (waiting for input or sending a record)"
    names = layer_names(model)
    return f"stalled in layer {names[layer] if layer < len(names) else layer}"


@cocotb.test()
async def accel_matches_golden(dut):
    cfg = _cfg()
    with open(cfg["export"]) as fh:
        model = json.load(fh)
    clips = np.load(cfg["inputs"]).astype(np.int64)
    seed = int(cfg["seed"])
    rng = random.Random(seed)
    dut._log.info(f"seed {seed} ({len(clips)} clips)")
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.features__valid.value = 0
    dut.result__ready.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)

    if cfg.get("mid_reset"):
        # start an inference, reset while it computes, then check everything from scratch
        task = cocotb.start_soon(drive(dut, clips[:1], rng, False))
        await task
        await ClockCycles(dut.clk, rng.randint(500, 3000))
        dut._log.info("reset in the middle of an inference")
        dut.rst.value = 1
        await ClockCycles(dut.clk, 2)
        dut.rst.value = 0
        await ClockCycles(dut.clk, 1)

    records: list[dict] = []
    start_time = get_sim_time(unit="ns")
    mon = cocotb.start_soon(monitor(dut, model, len(clips), rng, cfg.get("backpressure", True),
                                    records))
    cocotb.start_soon(drive(dut, clips, rng, cfg.get("gaps", True)))
    budget = cfg.get("timeout_cycles")
    failure = None
    try:
        if budget:
            await with_timeout(mon, int(budget) * CLOCK_NS, "ns")
        else:
            await mon
    except SimTimeoutError:
        failure = (f"timeout: {len(records)} of {len(clips)} results after the budget of "
                   f"{int(budget):,} cycles; {stall_location(dut, model)}")
    except UnresolvedBits as exc:
        failure = str(exc)
    sim_cycles = int((get_sim_time(unit="ns") - start_time) / CLOCK_NS)
    if failure is not None:
        with open(cfg["out"], "w") as fh:
            json.dump({"records": records, "mismatches": 0, "details": [], "seed": seed,
                       "sim_cycles": sim_cycles, "failure": failure}, fh)
        raise AssertionError(f"{failure} (seed {seed})")

    details, mismatches = [], 0
    for i, (x, rec) in enumerate(zip(clips, records)):
        errs = compare(model, x, rec)
        mismatches += len(errs)
        details += [f"clip {i}: {e}" for e in errs]
    with open(cfg["out"], "w") as fh:
        json.dump({"records": records, "mismatches": mismatches, "details": details[:200],
                   "seed": seed, "sim_cycles": sim_cycles}, fh)
    for d in details[:20]:
        dut._log.error(d)
    assert mismatches == 0, f"{mismatches} mismatches against the golden model (seed {seed})"
