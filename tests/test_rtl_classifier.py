"""Gate unit and classifier (rtl/gate.py, rtl/classifier.py) against the golden model's
z = head_acc > 0, n = sum_t z and logits = Wc n + Bc (argmax, lowest index on ties)."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from sparknet_hw.quant import golden
from sparknet_hw.quant.random_export import random_export
from sparknet_hw.rtl.classifier import Classifier
from sparknet_hw.rtl.classifier_serial import SerialClassifier, check_adders
from sparknet_hw.rtl.config import build_plan
from sparknet_hw.rtl.gate import GateUnit


def test_gate_unit_packs_head_signs():
    lanes, F = 8, 32
    dut = GateUnit(lanes, F, 20)
    rng = np.random.default_rng(3)
    acc = rng.integers(-3, 4, (5, F))              # zeros must give closed gates
    words = []

    async def bench(ctx):
        for row in acc:
            for g in range(F // lanes):
                ctx.set(dut.valid, 1)
                ctx.set(dut.grp, g)
                for p in range(lanes):
                    ctx.set(dut.acc[p], int(row[g * lanes + p]))
                await ctx.tick()
                ctx.set(dut.valid, 0)
                if ctx.get(dut.word.valid):
                    words.append(ctx.get(dut.word.payload))
            await ctx.tick()
            if ctx.get(dut.word.valid):
                words.append(ctx.get(dut.word.payload))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    want = [sum(1 << f for f in range(F) if row[f] > 0) for row in acc]
    assert words == want


ADDERS = [12, 1, 2, 3, 4, 6]          # 12: rtl/classifier.py; fewer: rtl/classifier_serial.py


def run_classifier(model, gate_map, gaps=False, adders=12):
    plan = build_plan(model)
    T = gate_map.shape[1]
    args = (32, T, 12, plan.cls_wbits, plan.logit_bits, plan.cls_columns, plan.cls_bias)
    dut = Classifier(*args) if adders == 12 else SerialClassifier(*args, adders)
    out = {}
    words = [int(sum(int(gate_map[f, t]) << f for f in range(32))) for t in range(T)]

    async def bench(ctx):
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        cycles = 0
        for w in words:
            ctx.set(dut.gates.valid, 1)
            ctx.set(dut.gates.payload, w)
            await ctx.tick().until(dut.gates.ready)
            cycles += 1
        ctx.set(dut.gates.valid, 0)
        await ctx.tick().until(dut.done)
        out["cls"] = ctx.get(dut.cls)
        counts = []
        for f in range(32):                       # the count memory: one cycle of latency
            ctx.set(dut.count_addr, f)
            await ctx.tick()
            counts.append(ctx.get(dut.count_data))
        out["counts"] = counts
        read = []
        for k in range(12):                       # the logits' read port: one cycle of latency
            ctx.set(dut.logit_addr, k)
            await ctx.tick()
            read.append(ctx.get(dut.logit_data))
        out["logits_read"] = read
        out["skipped"] = ctx.get(dut.frames_skipped)
        out["busy"] = ctx.get(dut.busy_cycles)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize("adders", ADDERS)
def test_classifier_matches_golden_and_skips_zero_frames(adders):
    model = random_export(8, seed=4)
    rng = np.random.default_rng(4)
    T = model["frames"]
    z = rng.random((32, T)) < 0.05
    z[:, rng.random(T) < 0.6] = False             # many all-zero frames
    out = run_classifier(model, z, adders=adders)
    n = z.sum(axis=1)
    logits = np.asarray(model["classifier"]["weight"]) @ n + np.asarray(model["classifier"]["bias"])
    assert out["counts"] == n.tolist()
    assert out["logits_read"] == logits.tolist()
    assert out["cls"] == int(np.argmax(logits))
    assert out["skipped"] == int((z.sum(axis=0) == 0).sum())
    # 12 / adders cycles per set bit, none per zero frame
    assert out["busy"] == 12 // adders * int(z.sum())


@pytest.mark.parametrize("adders", ADDERS)
def test_classifier_counts_one_gate_open_frame_after_frame(adders):
    # the same single gate in consecutive frames: a count is read while it is written back
    model = random_export(8, seed=6)
    T = model["frames"]
    z = np.zeros((32, T), dtype=bool)
    z[5, :40] = True
    z[31, 40:45] = True
    z[0, 45:47] = True
    z[[0, 31], 50:60] = True
    out = run_classifier(model, z, adders=adders)
    n = z.sum(axis=1)
    assert out["counts"] == n.tolist()
    logits = np.asarray(model["classifier"]["weight"]) @ n + np.asarray(model["classifier"]["bias"])
    assert out["logits_read"] == logits.tolist()


@pytest.mark.parametrize("adders", [12, 2])
def test_classifier_ties_pick_lowest_index(adders):
    model = random_export(4, seed=5)
    model["classifier"]["weight"] = [[0] * 32 for _ in range(12)]
    model["classifier"]["bias"] = [3, 7, 1, 7, 7, 0, 0, 0, 0, 0, 0, 7]
    out = run_classifier(model, np.zeros((32, 101), dtype=bool), adders=adders)
    assert out["logits_read"] == model["classifier"]["bias"]
    assert out["cls"] == 1 == golden.run(model, np.zeros((32, 101), dtype=np.int64))["class"]


@pytest.mark.parametrize("adders", [12, 3])
def test_classifier_argmax_at_either_end(adders):
    # the scan's first and last reads: a winner in logit 0 or logit 11 (negative logits too)
    model = random_export(4, seed=5)
    model["classifier"]["weight"] = [[0] * 32 for _ in range(12)]
    for bias, want in (([-2] * 11 + [-1], 11), ([9] + [8] * 11, 0)):
        model["classifier"]["bias"] = bias
        out = run_classifier(model, np.zeros((32, 101), dtype=bool), adders=adders)
        assert out["cls"] == want


def test_serial_classifier_refuses_one_step_per_gate():
    with pytest.raises(ValueError, match="at least two steps"):
        check_adders(12, 12)
    with pytest.raises(ValueError, match="divisor"):
        check_adders(12, 5)
