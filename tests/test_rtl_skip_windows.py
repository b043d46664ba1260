"""SkipWindows (rtl/skip_windows.py): the depthwise skip windows against a Python shift
register model (new frame's bit at the window top, frames past T enter as zero)."""
import random

from amaranth.sim import Simulator

from sparknet_hw.quant.random_export import random_export
from sparknet_hw.rtl.config import HwConfig, build_plan
from sparknet_hw.rtl.skip_windows import SkipWindows, window_sizes


def test_windows_shift_like_the_model():
    plan = build_plan(random_export(4, seed=8), HwConfig(zero_skip=True, skip_depthwise=True,
                                                         dw_frames=True))
    assert any(p.frames for p in plan.passes)
    T, P, C, W = plan.T, plan.P, plan.C, plan.mask_width
    dut = SkipWindows(plan, range(T + 8))
    sizes = window_sizes(plan)
    KM = max(p.kernel for p in plan.passes)
    LM = max(p.window for p in plan.passes)
    rng = random.Random(5)

    async def bench(ctx):
        win, fwin = [0] * len(sizes), [0] * C
        ok = 0
        for cycle in range(300):
            word = rng.getrandbits(W) if rng.random() < 0.7 else 0
            km1, lm1 = rng.randrange(KM), rng.randrange(LM)
            shift, clear = rng.random() < 0.6, rng.random() < 0.05
            addr = rng.randrange(T + 8)
            for port, v in ((dut.word, word), (dut.km1, km1), (dut.lm1, lm1), (dut.shift, shift),
                            (dut.clear, clear), (dut.addr, addr)):
                ctx.set(port, v)
            await ctx.delay(1e-9)
            sh = [((w >> 1) | ((ok and (word >> (i * P)) & ((1 << P) - 1) != 0) << km1))
                  & ((1 << sizes[i]) - 1) for i, w in enumerate(win)]
            fsh = [((w >> 1) | ((ok and (word >> c) & 1) << lm1)) & ((1 << LM) - 1)
                   for c, w in enumerate(fwin)]
            assert ctx.get(dut.win0_next) == sh[0]
            assert ctx.get(dut.fwin0_next) == fsh[0]
            await ctx.tick()
            if clear:
                win, fwin = [0] * len(win), [0] * C
            elif shift:
                win, fwin = sh, fsh
            ok = int(addr < T)
            assert [ctx.get(dut.win[i]) for i in range(len(win))] == win, cycle
            assert [ctx.get(dut.fwin[c]) for c in range(C)] == fwin, cycle

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
