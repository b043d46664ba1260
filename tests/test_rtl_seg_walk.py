"""SegmentWalker (rtl/seg_walk.py): a segment's channels, lowest set bit first, against the
set bits of the source mask (RES / HEAD masks cut to the block's channels)."""
import random

from amaranth.sim import Simulator

from sparknet_hw.rtl.seg_walk import START_LAG, Segment, SegmentWalker


def test_segment_walk_matches_set_bits():
    W, C = 12, 8
    dut = SegmentWalker(W, C, pw_next=True)
    rng = random.Random(3)
    ports = {Segment.PW: dut.pw, Segment.RES: dut.res, Segment.HEAD: dut.head,
             Segment.PW_NEXT: dut.pw_next}
    cases = [(src, mask) for src in Segment for mask in (0, 1, 1 << (W - 1), (1 << W) - 1)]
    cases += [(rng.choice(list(Segment)), rng.getrandbits(W)) for _ in range(60)]

    async def bench(ctx):
        for src, mask in cases:
            for s, port in ports.items():          # the other sources must not matter
                ctx.set(port, mask if s == src else rng.getrandbits(W))
            # PW and PW_NEXT starts are searched from the masks of the cycle before `go`
            # (START_LAG), RES and HEAD from the go cycle's
            lagged = src in (Segment.PW, Segment.PW_NEXT)
            if lagged:
                for _ in range(START_LAG):
                    await ctx.tick()
            ctx.set(dut.go, 1)
            ctx.set(dut.src, src)
            if lagged:
                ctx.set(ports[src], rng.getrandbits(W))   # a change in the go cycle is late
            await ctx.tick()
            ctx.set(dut.go, 0)
            width = C if src in (Segment.RES, Segment.HEAD) else W
            want = [c for c in range(width) if (mask >> c) & 1]
            got = []
            for i in range(max(len(want), 1)):
                assert ctx.get(dut.first) == (i == 0)
                assert ctx.get(dut.valid) == bool(want)
                if want:
                    got.append(ctx.get(dut.c))
                last = ctx.get(dut.last)
                assert last == (i == max(len(want), 1) - 1), (src, mask, i)
                ctx.set(dut.advance, not last)
                await ctx.tick()
                ctx.set(dut.advance, 0)
            assert got == want, (src, bin(mask))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
