"""PE array (rtl/pe_array.py): gated MACs accumulate like golden.pointwise / depthwise."""
import numpy as np
from amaranth.sim import Simulator

from sparknet_hw.quant import golden
from sparknet_hw.rtl.pe_array import PEArray


def test_pe_array_dot_products_with_gating():
    """Each lane accumulates bias + the products it was told to issue, and nothing of a
    gated one: lanes are gated at random, with non-zero operands too, so an array that
    ignored `en` (or gated the wrong lane) would add products the reference leaves out."""
    lanes, n = 4, 12
    dut = PEArray(lanes, 8, 9, 16, 24)
    rng = np.random.default_rng(1)
    W = rng.integers(-127, 128, (lanes, n))
    a = rng.integers(1, 256, n)
    a[rng.random(n) < 0.3] = 0
    en = rng.random((lanes, n)) < 0.6               # issue enables, independent of a
    bias = rng.integers(-5000, 5000, lanes)
    want = bias + (W * a[None, :] * en).sum(axis=1)
    assert (en & (a[None, :] != 0) & (W != 0)).sum() < (a[None, :] != 0).sum() * lanes

    async def bench(ctx):
        for c in range(n):
            ctx.set(dut.valid, 1)
            ctx.set(dut.clear, c == 0)
            for p in range(lanes):
                ctx.set(dut.w[p], int(W[p, c]))
                ctx.set(dut.a[p], int(a[c]))
                ctx.set(dut.bias[p], int(bias[p]))
            ctx.set(dut.en, sum(int(en[p, c]) << p for p in range(lanes)))
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
