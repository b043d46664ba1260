"""Performance counters (rtl/counters.py): per-layer cycles, issued and gated MACs in a
memory, and the totals, from the per-cycle reports of the sequencer (S0) and the PE stage
(S1, one cycle later), the way the accelerator drives them."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from sparknet_hw.rtl.counters import PerfCounters


def _events(rng, n, count, mean_run):
    """Layer runs of random length (1 cycle runs included), random increments."""
    out = []
    while len(out) < count:
        layer = int(rng.integers(0, n))
        for _ in range(int(rng.geometric(1 / mean_run))):
            out.append((layer, bool(rng.random() < 0.8), int(rng.integers(0, 9)),
                        int(rng.integers(0, 9)), int(rng.integers(0, 20))))
    return out[:count]


@pytest.mark.parametrize("mean_run", [1.3, 6.0])
def test_counters_accumulate_per_layer(mean_run):
    n = 5
    dut = PerfCounters(n, (16, 16, 17))
    rng = np.random.default_rng(10)
    inferences = [_events(rng, n, 300, mean_run) for _ in range(2)]

    async def bench(ctx):
        for events in inferences:
            cyc, iss, gat = [0] * n, [0] * n, [0] * n
            for layer, v, ai, ag, bg in events:
                cyc[layer] += v
                iss[layer] += ai
                gat[layer] += ag + bg
            ctx.set(dut.clear, 1)
            await ctx.tick()
            ctx.set(dut.clear, 0)
            ctx.set(dut.run, 1)
            # S0 reports of cycle i; the S1 (a_*) reports of the same op arrive at cycle i+1
            prev = None
            for ev in events + [None]:
                layer, v, ai, ag, bg = ev or (None,) * 5
                if ev is not None:
                    ctx.set(dut.cyc_valid, v)
                    ctx.set(dut.cyc_layer, layer)
                    ctx.set(dut.b_gated, bg)
                else:
                    ctx.set(dut.cyc_valid, 0)
                    ctx.set(dut.b_gated, 0)
                    ctx.set(dut.cyc_layer, int(rng.integers(0, n)))
                ctx.set(dut.a_issued, prev[2] if prev else 0)
                ctx.set(dut.a_gated, prev[3] if prev else 0)
                prev = ev
                await ctx.tick()
            ctx.set(dut.run, 0)
            ctx.set(dut.a_issued, 0)
            ctx.set(dut.a_gated, 0)
            for _ in range(3):           # idle cycles before the end, as after the last op
                ctx.set(dut.cyc_layer, int(rng.integers(0, n)))
                await ctx.tick()
            ctx.set(dut.flush, 1)
            await ctx.tick()
            ctx.set(dut.flush, 0)
            # the read port now belongs to rd_layer: one cycle of latency
            got = []
            for i in range(n):
                ctx.set(dut.rd_layer, i)
                await ctx.tick()
                got.append(tuple(ctx.get(dut.rd_data[k]) for k in range(3)))
            assert got == list(zip(cyc, iss, gat))
            assert ctx.get(dut.cycles) == len(events) + 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
