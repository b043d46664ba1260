"""Requant unit (rtl/requant.py) against golden.requant: shift, round half to even, clamp."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from sparknet_hw.quant import golden
from sparknet_hw.rtl.requant import Requant


@pytest.mark.parametrize("registered", [False, True])
@pytest.mark.parametrize("smin,smax,lo,hi", [(6, 12, -128, 127), (-2, 3, 0, 255), (1, 1, -8, 7)])
def test_requant_matches_golden(smin, smax, lo, hi, registered):
    lanes, in_bits, out_bits = 4, 22, 10
    dut = Requant(lanes, in_bits, smin, smax, out_bits, registered=registered)
    rng = np.random.default_rng(smin + 100)
    xs = np.concatenate([rng.integers(-(1 << (in_bits - 1)), 1 << (in_bits - 1), 400),
                         np.arange(-70, 70), [(1 << s) * k + (1 << max(s - 1, 0)) for s in
                                              range(max(smin, 0), smax + 1) for k in range(-3, 4)]])
    xs = xs[: len(xs) // lanes * lanes].reshape(-1, lanes)
    shifts = rng.integers(smin, smax + 1, size=xs.shape)

    async def bench(ctx):
        ctx.set(dut.lo, lo)
        ctx.set(dut.hi, hi)
        for row, srow in zip(xs, shifts):
            for p in range(lanes):
                ctx.set(dut.x[p], int(row[p]))
                ctx.set(dut.shift[p], int(srow[p]))
            if registered:
                await ctx.tick()                   # y is the value of the cycle before
            else:
                await ctx.delay(1e-9)
            for p in range(lanes):
                want = int(golden.requant(np.array([row[p]]), int(srow[p]), lo, hi)[0])
                assert ctx.get(dut.y[p]) == want, (row[p], srow[p])

    sim = Simulator(dut)
    if registered:
        sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
