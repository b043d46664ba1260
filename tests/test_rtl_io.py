"""Input loader and record sender (rtl/loader.py, rtl/record_tx.py)."""
import numpy as np
from amaranth.sim import Simulator

from sparknet_hw.rtl.loader import InputLoader
from sparknet_hw.rtl.record_tx import Direct, FromMemory, RecordSender


def test_loader_packs_frames_into_lane_words():
    P, lb, F, T, G = 4, 8, 8, 3, 2
    dut = InputLoader(P, lb, F, T, G, G * P)
    rng = np.random.default_rng(6)
    x = rng.integers(-128, 128, (F, T))
    x[rng.random((F, T)) < 0.3] = 0
    mem, masks = {}, {}

    async def bench(ctx):
        ctx.set(dut.enable, 1)
        for t in range(T):
            for f in range(F):
                ctx.set(dut.features.valid, 1)
                ctx.set(dut.features.payload, int(x[f, t]))
                await ctx.delay(1e-9)
                assert ctx.get(dut.features.ready)
                if ctx.get(dut.wr_en):
                    mem[ctx.get(dut.wr_addr)] = ctx.get(dut.wr_data)
                    en = ctx.get(dut.mask_en)
                    g = en.bit_length() - 1
                    masks[(ctx.get(dut.mask_addr), g)] = (ctx.get(dut.mask_data) >> (g * P)) & 0xF
                await ctx.tick()
        ctx.set(dut.features.valid, 0)
        await ctx.tick()
        assert ctx.get(dut.full) and not ctx.get(dut.features.ready)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    for t in range(T):
        for g in range(G):
            word = mem[t * G + g]
            lanes = [(word >> (p * lb)) & 0xFF for p in range(P)]
            assert lanes == [int(v) & 0xFF for v in x[g * P:(g + 1) * P, t]]
            assert masks[(t, g)] == sum(1 << p for p in range(P) if x[g * P + p, t] != 0)


def test_record_sender_with_backpressure():
    sections = [Direct("a", 5), FromMemory("m1", 4), Direct("b", 1), FromMemory("m3", 3, 3),
                Direct("c", 2)]
    dut = RecordSender(sections)
    direct = {"a": [1000 + i for i in range(5)], "b": [1100], "c": [3000, 3001]}
    memories = {"m1": [[1500 + e] for e in range(4)],
                "m3": [[2000 + 10 * e + k for k in range(3)] for e in range(3)]}
    want = []
    for s in sections:
        want += direct[s.name] if s.name in direct else [w for e in memories[s.name] for w in e]
    got = []

    async def bench(ctx):
        for name, values in direct.items():
            for i, v in enumerate(values):
                ctx.set(getattr(dut, name)[i], v)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        rng = np.random.default_rng(7)
        addr_q = 0
        while True:
            # memories with one cycle of read latency behind the shared addr
            for name, entries in memories.items():
                for k, v in enumerate(entries[addr_q] if addr_q < len(entries) else [0] * 3):
                    ctx.set(getattr(dut, name)[k], v)
            ready = bool(rng.random() < 0.5)
            ctx.set(dut.result.ready, ready)
            await ctx.delay(1e-9)
            valid = ctx.get(dut.result.valid)
            data, last = ctx.get(dut.result.payload.data), ctx.get(dut.result.payload.last)
            addr_q = ctx.get(dut.addr)
            await ctx.tick()
            if valid and ready:
                got.append(data)
                if last:
                    break
        assert not ctx.get(dut.busy)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == want
