"""The input loader: features arrive frame by frame (for t: for f: x[f, t]) as signed 8-bit
values; it packs P consecutive features into one buffer word (lane width of the activation
buffer) and writes it with the word's non-zero lane mask into the mask memory.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .util import mul_const


class InputLoader(wiring.Component):
    def __init__(self, lanes: int, lane_bits: int, features: int, frames: int, groups: int,
                 mask_width: int):
        assert features % lanes == 0
        self.P, self.lane_bits, self.F, self.T, self.G = lanes, lane_bits, features, frames, groups
        self.mask_width = mask_width
        super().__init__({
            "features": In(stream.Signature(signed(8))),
            "enable": In(1),
            "clear": In(1),
            "full": Out(1),
            "wr_addr": Out(range(frames * groups)),
            "wr_data": Out(lanes * lane_bits),
            "wr_en": Out(1),
            "mask_addr": Out(range(frames)),
            "mask_data": Out(mask_width),
            "mask_en": Out(mask_width // lanes),
        })

    def elaborate(self, platform):
        m = Module()
        P, lb = self.P, self.lane_bits
        f = Signal(range(self.F))
        t = Signal(range(self.T))
        lanes = [Signal(lb, name=f"lane{p}") for p in range(P - 1)]
        nz = [Signal(name=f"nz{p}") for p in range(P - 1)]
        m.d.comb += self.features.ready.eq(self.enable & ~self.full)
        x = self.features.payload
        lane = f[:P.bit_length() - 1] if P > 1 else 0
        grp = f >> (P.bit_length() - 1)
        word = Cat(*lanes, x[:lb])
        wnz = Cat(*nz, x != 0)
        with m.If(self.features.valid & self.features.ready):
            for p in range(P - 1):
                with m.If(lane == p):
                    m.d.sync += [lanes[p].eq(x[:lb]), nz[p].eq(x != 0)]
            with m.If(lane == P - 1):
                m.d.comb += [self.wr_en.eq(1), self.wr_addr.eq(mul_const(t, self.G) + grp),
                             self.wr_data.eq(word), self.mask_addr.eq(t),
                             self.mask_data.eq(wnz.replicate(self.mask_width // P)),
                             self.mask_en.eq(Const(1, self.mask_width // P) << grp)]
            with m.If(f == self.F - 1):
                m.d.sync += f.eq(0)
                with m.If(t == self.T - 1):
                    m.d.sync += [t.eq(0), self.full.eq(1)]
                with m.Else():
                    m.d.sync += t.eq(t + 1)
            with m.Else():
                m.d.sync += f.eq(f + 1)
        with m.If(self.clear):
            m.d.sync += [self.full.eq(0), f.eq(0), t.eq(0)]
        return m
