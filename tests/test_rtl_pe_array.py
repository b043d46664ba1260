"""PE array (rtl/pe_array.py): gated MACs accumulate like golden.pointwise / depthwise."""
import numpy as np
from amaranth.sim import Simulator

from sparknet_hw.quant import golden
from sparknet_hw.rtl.pe_array import PEArray


def test_pe_array_dot_products_with_gating():
    lanes, n = 4, 12
    dut = PEArray(lanes, 8, 9, 16, 24)
    rng = np.random.default_rng(1)
    W = rng.integers(-127, 128, (lanes, n))
    a = rng.integers(0, 256, n)
    a[rng.random(n) < 0.4] = 0                     # zero activations: gated, not issued
    bias = rng.integers(-5000, 5000, lanes)
    want = golden.pointwise(a[:, None], W, bias)[:, 0]
    issued = []

    async def bench(ctx):
        for c in range(n):
            ctx.set(dut.valid, 1)
            ctx.set(dut.clear, c == 0)
            for p in range(lanes):
                ctx.set(dut.w[p], int(W[p, c]))
                ctx.set(dut.a[p], int(a[c]))
                ctx.set(dut.bias[p], int(bias[p]))
            en = 0 if a[c] == 0 else (1 << lanes) - 1
            ctx.set(dut.en, en)
            issued.append(bin(en).count("1"))
            await ctx.tick()
        ctx.set(dut.valid, 0)
        await ctx.tick()
        await ctx.tick()
        got = [ctx.get(dut.acc[p]) for p in range(lanes)]
        assert got == want.tolist()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert sum(issued) == lanes * int((a != 0).sum())


def test_pe_array_depthwise_lanes():
    lanes, K = 4, 11
    dut = PEArray(lanes, 8, 9, 16, 24)
    rng = np.random.default_rng(2)
    x = rng.integers(-128, 128, (lanes, 30))
    w = rng.integers(-127, 128, (lanes, K))
    ref = golden.depthwise(x, w)
    t = 12                                          # an interior frame: all taps valid

    async def bench(ctx):
        for k in range(K):
            ctx.set(dut.valid, 1)
            ctx.set(dut.clear, k == 0)
            for p in range(lanes):
                ctx.set(dut.w[p], int(w[p, k]))
                ctx.set(dut.a[p], int(x[p, t + k - K // 2]))
                ctx.set(dut.bias[p], 0)
            ctx.set(dut.en, sum(1 << p for p in range(lanes) if x[p, t + k - K // 2] != 0))
            await ctx.tick()
        ctx.set(dut.valid, 0)
        await ctx.tick()
        await ctx.tick()
        assert [ctx.get(dut.acc[p]) for p in range(lanes)] == ref[:, t].tolist()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
