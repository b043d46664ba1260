"""Performance counters (rtl/counters.py): per-layer cycles, issued and gated MACs and totals,
from the per-cycle increments the sequencer and the PE stage report."""
import numpy as np
from amaranth.sim import Simulator

from sparknet_hw.rtl.counters import PerfCounters


def test_counters_accumulate_per_layer():
    n = 4
    dut = PerfCounters(n, [(16, 16, 16)] * n)
    rng = np.random.default_rng(10)
    events = [(int(rng.integers(0, n)), int(rng.integers(0, n)), int(rng.integers(0, 9)),
               int(rng.integers(0, 9)), int(rng.integers(0, n)), int(rng.integers(0, 20)),
               bool(rng.random() < 0.8)) for _ in range(300)]
    cyc, iss, gat = [0] * n, [0] * n, [0] * n
    for cl, al, ai, ag, bl, bg, v in events:
        cyc[cl] += v
        iss[al] += ai
        gat[al] += ag
        gat[bl] += bg

    async def bench(ctx):
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        ctx.set(dut.run, 1)
        for cl, al, ai, ag, bl, bg, v in events:
            ctx.set(dut.cyc_valid, v)
            ctx.set(dut.cyc_layer, cl)
            ctx.set(dut.a_layer, al)
            ctx.set(dut.a_issued, ai)
            ctx.set(dut.a_gated, ag)
            ctx.set(dut.b_layer, bl)
            ctx.set(dut.b_gated, bg)
            await ctx.tick()
        ctx.set(dut.run, 0)
        for sig in (dut.a_issued, dut.a_gated, dut.b_gated, dut.cyc_valid):
            ctx.set(sig, 0)
        await ctx.tick()
        assert [ctx.get(dut.layer_cycles[i]) for i in range(n)] == cyc
        assert [ctx.get(dut.layer_issued[i]) for i in range(n)] == iss
        assert [ctx.get(dut.layer_gated[i]) for i in range(n)] == gat
        assert ctx.get(dut.cycles) == len(events)
        assert ctx.get(dut.total_issued) == sum(iss)
        assert ctx.get(dut.total_gated) == sum(gat)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
