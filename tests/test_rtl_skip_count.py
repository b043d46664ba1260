"""SkipCounter (rtl/skip_count.py): the skipped products of a walk's first op against a
count of the zero operands times the output lanes (or frames) they would have reached."""
import random

import pytest
from amaranth.sim import Simulator

from sparknet_hw.quant.random_export import random_export
from sparknet_hw.rtl.config import HwConfig, build_plan
from sparknet_hw.rtl.skip_count import SkipCounter


def bits(v):
    return [i for i in range(v.bit_length()) if (v >> i) & 1]


def cases(plan, rng):
    T, P, C, F = plan.T, plan.P, plan.C, plan.F
    for i, p in enumerate(plan.passes):
        for _ in range(40):
            if p.is_head or rng.random() < 0.5:          # a 1x1 segment
                sub = int(p.has_res and rng.random() < 0.5)
                n_seg = C if p.is_head or sub else p.c_in
                og = rng.randrange(p.n_og)
                mask = rng.getrandbits(n_seg)
                n_out = F if p.is_head else C
                want = (n_seg - len(bits(mask))) * min(P, n_out - og * P)
                yield dict(pass_=i, head=int(p.is_head), frames=int(p.frames), sub=sub, og=og,
                           rem=mask & (mask - 1), cur_valid=int(mask != 0), one_first=1), want
            elif p.frames:                                # a frame-parallel channel
                s = rng.randrange(0, T, P)
                valid = [r for r in range(p.window) if 0 <= s - p.half + r < T]
                nz = [r for r in valid if rng.random() < 0.5]
                want = sum(1 for r in valid if r not in nz for j in range(P)
                           if s + j < T and 0 <= r - j < p.kernel)
                yield dict(pass_=i, head=0, frames=1, s=s, g=rng.randrange(p.c_in),
                           drem=sum(1 << r for r in nz), dw_first=1), want
            else:                                         # a lane group's taps
                s, g = rng.randrange(T), rng.randrange(p.gin)
                lo, hi = max(0, p.half - s), min(p.kernel - 1, T - 1 - s + p.half)
                nz = [k for k in range(lo, hi + 1) if rng.random() < 0.5]
                want = (hi - lo + 1 - len(nz)) * min(P, p.c_in - g * P)
                yield dict(pass_=i, head=0, frames=0, s=s, g=g,
                           vt=sum(1 << k for k in range(lo, hi + 1)),
                           drem=sum(1 << k for k in nz), dw_first=1), want


@pytest.mark.parametrize("frames", [False, True])
def test_skip_count_matches_zero_operands(frames):
    plan = build_plan(random_export(4, seed=8), HwConfig(zero_skip=True, skip_depthwise=True,
                                                         dw_frames=frames))
    assert any(p.frames for p in plan.passes) == frames
    dut = SkipCounter(plan, range(len(plan.passes) + 1), range(plan.T + 1), range(64),
                      range(64))
    rng = random.Random(11)

    async def bench(ctx):
        n = 0
        for inputs, want in cases(plan, rng):
            for name in ("s", "g", "og", "sub", "rem", "cur_valid", "vt", "drem", "one_first",
                         "dw_first"):
                ctx.set(getattr(dut, name), inputs.get(name, 0))
            for name in ("pass_", "head", "frames"):
                ctx.set(getattr(dut, name), inputs[name])
            await ctx.delay(1e-9)
            assert ctx.get(dut.gated) == want, inputs
            ctx.set(dut.one_first, 0)
            ctx.set(dut.dw_first, 0)
            await ctx.delay(1e-9)
            assert ctx.get(dut.gated) == 0
            n += 1
        assert n > 100

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
