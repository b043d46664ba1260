"""The depthwise skip windows: per lane group, the "word non-zero" bits of the frames
s-h .. s+h of the current step; per channel in frame-parallel passes, the non-zero bits of
frames s-K/2 .. s+P-1+K/2 (a tile's whole window).

Each step (or preload cycle, `shift`) the windows shift by one frame, the new frame's bits
coming from the mask memories' second read port (`word`, read at `addr` the cycle before):
the new bit enters at the window's top (K - 1, `km1`; window - 1, `lm1`). A frame past T
enters as zero. `clear` empties the windows at the start of a pass. `win0_next` /
`fwin0_next` are the first window's shifted values, for the step the sequencer enters.
"""
from __future__ import annotations

from amaranth.hdl import Const, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .config import Plan


def window_sizes(plan: Plan) -> list[int]:
    """Bits of each lane group's window: only the largest kernel of the passes that have
    the group (block 1, 32 input channels with K = 11, has many groups; the wide kernels
    have C/P)."""
    G = max(p.gin for p in plan.passes)
    return [max([p.kernel for p in plan.passes if not p.is_head and p.gin > i] + [1])
            for i in range(G)]


class SkipWindows(wiring.Component):
    def __init__(self, plan: Plan, addr_shape):
        self.plan = plan
        W, C = plan.mask_width, plan.C
        self.dskip = plan.config.zero_skip and plan.config.skip_depthwise
        self.fdw = any(p.frames for p in plan.passes)
        G = max(p.gin for p in plan.passes)
        KM = max(p.kernel for p in plan.passes)
        LM = max(p.window for p in plan.passes)
        super().__init__({
            "word": In(W),
            "addr": In(addr_shape),
            "km1": In(range(KM)),
            "lm1": In(range(LM)),
            "shift": In(1),
            "clear": In(1),
            "win": Out(data.ArrayLayout(KM, G)),
            "win0_next": Out(KM),
            "fwin": Out(data.ArrayLayout(LM, C if self.fdw else 0)),
            "fwin0_next": Out(LM),
        })

    def elaborate(self, platform):
        plan = self.plan
        m = Module()
        T, P, C = plan.T, plan.P, plan.C
        LM = max(p.window for p in plan.passes)
        wbits = window_sizes(plan)
        G = len(wbits)
        win = [Signal(wbits[i], name=f"win{i}") for i in range(G)]
        ok = Signal()                   # the frame read for the window exists (< T)
        m.d.sync += ok.eq(self.addr < T)
        shifted = []
        for i in range(G):
            bit = Signal(name=f"nzword{i}")
            m.d.comb += bit.eq(ok & (self.word[i * P:(i + 1) * P] != 0))
            sh = Signal(wbits[i], name=f"win_shifted{i}")
            m.d.comb += sh.eq((win[i] >> 1) | (bit.as_unsigned() << self.km1)[:wbits[i]])
            shifted.append(sh)
            m.d.comb += self.win[i].eq(win[i])
        fwin = [Signal(LM, name=f"fwin{c}") for c in range(C if self.fdw else 0)]
        fshifted = []
        for c in range(len(fwin)):
            sh = Signal(LM, name=f"fwin_shifted{c}")
            m.d.comb += sh.eq((fwin[c] >> 1) | ((ok & self.word[c]).as_unsigned() << self.lm1)[:LM])
            fshifted.append(sh)
            m.d.comb += self.fwin[c].eq(fwin[c])
        m.d.comb += self.win0_next.eq(shifted[0] if G else Const(0))
        if fwin:
            m.d.comb += self.fwin0_next.eq(fshifted[0])
        with m.If(self.clear):
            if self.dskip:
                m.d.sync += [w.eq(0) for w in win]
                m.d.sync += [w.eq(0) for w in fwin]
        with m.Elif(self.shift):
            if self.dskip:
                m.d.sync += [win[i].eq(shifted[i]) for i in range(G)]
            m.d.sync += [fwin[c].eq(fshifted[c]) for c in range(len(fwin))]
        return m
