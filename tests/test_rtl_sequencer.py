"""Sequencer (rtl/sequencer.py): the op stream of a whole inference against a Python model
of the schedule (docs/accelerator.md), with and without zero skipping."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from sparknet_hw.quant.random_export import random_export
from sparknet_hw.rtl.config import HwConfig, build_plan
from sparknet_hw.rtl.sequencer import OpKind, Sequencer


def frame_dw_ops(plan, p, s, amask):
    """A frame-parallel depthwise step: per channel, the non-zero inputs of its window."""
    T, P, h = plan.T, plan.P, p.half
    ops, skipped = [], 0
    for c in range(p.c_in):
        nz = []
        for r in range(p.kernel + P - 1):
            u = s - h + r
            if not 0 <= u < T:
                continue
            if (amask[u] >> c) & 1:
                nz.append(r)
            else:
                skipped += sum(1 for j in range(P) if s + j < T and 0 <= r - j < p.kernel)
        ops += [("dw", p.l_dw, 0, c, r, s) for r in nz] or [("dw", p.l_dw, 0, c, None, s)]
    return ops, skipped


def reference_ops(plan, dmask, tmask, xmask, bmask, skip, dskip):
    T, C, P = plan.T, plan.C, plan.P
    ops, skipped = [], 0
    for p in plan.passes:
        for s in range(T + 1):
            if p.frames and s < T and s % P == 0:
                fops, fskipped = frame_dw_ops(plan, p, s, xmask if p.a_buf == "X" else bmask)
                ops += fops
                skipped += fskipped
            elif not p.is_head and s < T and not p.frames:
                amask = xmask if p.a_buf == "X" else bmask
                for g in range(p.gin):
                    lo, hi = max(0, p.half - s), min(p.kernel - 1, T - 1 - s + p.half)
                    taps = list(range(lo, hi + 1))
                    if dskip:
                        nz = [k for k in taps if (amask[s + k - p.half] >> (g * P)) & ((1 << P) - 1)]
                        lanes = min(P, p.c_in - g * P)
                        skipped += (len(taps) - len(nz)) * lanes
                        taps = nz
                        if not taps:
                            ops.append(("dw", p.l_dw, g, 0, None, s))
                    for k in taps:
                        ops.append(("dw", p.l_dw, g, 0, k, s))
            if s == 0:
                continue
            f = s - 1
            for og in range(p.n_og):
                n_out = plan.F if p.is_head else C
                nvalid = min(P, n_out - og * P)
                if p.is_head:
                    segs = [("head", p.l_pw, xmask[f] & ((1 << C) - 1), C)]
                else:
                    dm = tmask[(f // P) & 1][f % P] if p.frames else dmask[f & 1]
                    segs = [("pw", p.l_pw, dm & ((1 << p.c_in) - 1), p.c_in)]
                    if p.has_res:
                        am = (xmask if p.a_buf == "X" else bmask)[f]
                        segs.append(("res", p.l_res, am & ((1 << C) - 1), C))
                for kind, layer, mask, cin in segs:
                    chans = [c for c in range(cin) if (mask >> c) & 1] if skip else list(range(cin))
                    if skip:
                        skipped += (cin - len(chans)) * nvalid
                    if not chans:
                        ops.append((kind, layer, og, None, f))
                    for c in chans:
                        ops.append((kind, layer, og, c, f))
    return ops, skipped


@pytest.mark.parametrize("skip,dskip,frames", [(True, True, True), (True, True, False),
                                               (True, False, False), (False, False, False)],
                         ids=["skip-all", "skip-all-channels", "skip-1x1", "no-skip"])
def test_sequencer_schedule(skip, dskip, frames):
    model = random_export(4, seed=8)
    plan = build_plan(model, HwConfig(zero_skip=skip, skip_depthwise=dskip, dw_frames=frames))
    assert any(p.frames for p in plan.passes) == frames
    dut = Sequencer(plan)
    rng = np.random.default_rng(9)
    T = plan.T
    dmask = [int(rng.integers(0, 1 << 32)) & int(rng.integers(0, 1 << 32)), 0]
    tmask = [[int(rng.integers(0, 16)) for _ in range(plan.P)] for _ in range(2)]
    tmask[1][2] = 0
    xmask = [int(v) & int(rng.integers(0, 1 << 31)) for v in rng.integers(0, 1 << 31, T)]
    for t in rng.choice(T, 40, replace=False):
        xmask[t] &= ~0xFF                          # all-zero lane-group-0 words
    xmask[3] = 0
    bmask = [int(v) & 0b0110 if rng.random() < 0.6 else 0 for v in rng.integers(0, 16, T)]
    kinds = {OpKind.DW: "dw", OpKind.PW: "pw", OpKind.RES: "res", OpKind.HEAD: "head"}
    got, total_skip = [], [0]

    async def bench(ctx):
        ctx.set(dut.dmask[0], dmask[0])
        ctx.set(dut.dmask[1], dmask[1])
        for b in range(2):
            for j in range(plan.P):
                ctx.set(dut.tmask[b][j], tmask[b][j])
        ctx.set(dut.start, 1)
        for cycle in range(200_000):
            addr = ctx.get(dut.mask_addr)
            addr2 = ctx.get(dut.dwmask_addr)
            if ctx.get(dut.op.valid):
                kind = kinds[ctx.get(dut.op.kind)]
                layer, grp = ctx.get(dut.op.layer), ctx.get(dut.op.grp)
                if kind == "dw":
                    k = ctx.get(dut.op.k) if ctx.get(dut.op.mac) else None
                    got.append((kind, layer, grp, ctx.get(dut.op.c), k, ctx.get(dut.op.t)))
                else:
                    c = ctx.get(dut.op.c) if ctx.get(dut.op.mac) else None
                    got.append((kind, layer, grp, c, ctx.get(dut.op.t)))
            total_skip[0] += ctx.get(dut.skip_gated)
            done = ctx.get(dut.done)
            await ctx.tick()
            ctx.set(dut.start, 0)
            ctx.set(dut.mask_x, xmask[addr] if addr < T else 0)
            ctx.set(dut.mask_b, bmask[addr] if addr < T else 0)
            ctx.set(dut.dwmask_x, xmask[addr2] if addr2 < T else 0)
            ctx.set(dut.dwmask_b, bmask[addr2] if addr2 < T else 0)
            if done:
                break

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    want, skipped = reference_ops(plan, dmask, tmask, xmask, bmask, skip, dskip)
    assert got == want, (len(got), len(want), _first_diff(got, want))
    assert total_skip[0] == skipped


def _first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i, a[max(0, i - 3):i + 3], b[max(0, i - 3):i + 3]
    return None
