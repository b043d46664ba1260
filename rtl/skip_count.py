"""The skipped-MAC count: the products a segment or depthwise walk does not issue (zero
operands skipped by the sequencer), reported in its first op (`one_first`, `dw_first`) so
that the counters see them as gated MACs of that op.

  1x1 segment     (channels of the segment - its non-zero channels) x the lanes in use
                  of the output group
  depthwise       (valid taps `vt` - non-zero taps `drem`) x the lanes in use of the group
  frame-parallel  the tile's real products minus those of the channel's non-zero inputs
                  (input at window offset r: one per lane whose output frame is in the tile
                  and in reach of tap r - lane)
"""
from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .config import Plan
from .util import mul_const, popcount


class SkipCounter(wiring.Component):
    def __init__(self, plan: Plan, pass_shape, s_shape, g_shape, og_shape):
        self.plan = plan
        W = plan.mask_width
        super().__init__({
            "pass_": In(pass_shape),
            "head": In(1),                  # the pass is the head
            "frames": In(1),                # the pass is frame-parallel
            "s": In(s_shape),
            "g": In(g_shape),
            "og": In(og_shape),
            "sub": In(1),                   # residual segment
            "rem": In(W),                   # the segment walk's channels after the current
            "cur_valid": In(1),
            "vt": In(max(p.kernel for p in plan.passes)),
            "drem": In(max(p.window for p in plan.passes)),
            "one_first": In(1),             # an issued first op of a 1x1 segment
            "dw_first": In(1),              # an issued first op of a depthwise walk
            "gated": Out(16),
        })

    def elaborate(self, platform):
        plan = self.plan
        m = Module()
        T, W, P, C = plan.T, plan.mask_width, plan.P, plan.C
        skip = plan.config.zero_skip
        dskip = skip and plan.config.skip_depthwise
        fdw = any(p.frames for p in plan.passes)
        passes = plan.passes + [plan.passes[-1]]        # as the sequencer's pass index
        KM = max(p.kernel for p in plan.passes)
        LM = max(p.window for p in plan.passes)
        pass_, s, g = self.pass_, self.s, self.g
        if skip:
            zeros = Signal(range(W + 1))
            seg_cin = Mux(self.head | self.sub, C, Array([Const(p.c_in) for p in passes])[pass_])
            m.d.comb += zeros.eq(seg_cin - popcount(self.rem) - self.cur_valid)
            last_grp = self.og == Array([Const(p.n_og - 1) for p in passes])[pass_]
            lastv_c = C - (-(-C // P) - 1) * P
            lastv_f = plan.F - (-(-plan.F // P) - 1) * P
            lastv = Mux(self.head, mul_const(zeros, lastv_f), mul_const(zeros, lastv_c))
            with m.If(self.one_first):
                m.d.comb += self.gated.eq(Mux(last_grp, lastv, zeros << plan.lg_p))
        if dskip:
            dzeros = Signal(range(KM + 1))
            m.d.comb += dzeros.eq(popcount(self.vt) - popcount(self.drem))
            d_last = Array([Const(p.gin - 1) for p in passes])[pass_] == g
            d_lastv = Array([mul_const(dzeros, p.c_in - (p.gin - 1) * P) for p in passes])[pass_]
            with m.If(self.dw_first):
                m.d.comb += self.gated.eq(Mux(d_last, d_lastv, dzeros << plan.lg_p))
        if fdw:
            nt = -(-T // P)
            n_last = T - (nt - 1) * P

            def cover(p, r, lanes):
                return sum(1 for j in range(lanes) if 0 <= r - j < p.kernel) if p.frames else 0

            def tile_real(p, i):
                if not p.frames:
                    return 0
                h_ = p.half
                return sum(min(p.kernel - 1, T - 1 - t + h_) - max(0, h_ - t) + 1
                           for t in range(i * P, min(i * P + P, T)))

            last_tile = Signal()
            m.d.comb += last_tile.eq(s + P > T)
            wsum = 0
            for r in range(LM):
                wr = Mux(last_tile, Array([Const(cover(p, r, n_last)) for p in passes])[pass_],
                         Array([Const(cover(p, r, P)) for p in passes])[pass_])
                wsum = wsum + Mux(self.drem[r], wr, 0)
            real_tile = Array([Array([Const(tile_real(p, i)) for i in range(nt)])
                               for p in passes])[pass_][s >> plan.lg_p]
            with m.If(self.dw_first & self.frames):
                m.d.comb += self.gated.eq(real_tile - wsum)
        return m
