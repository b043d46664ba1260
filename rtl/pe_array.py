"""The MAC array: `lanes` processing elements, each a gated multiplier and an accumulator.

Stage S1 (inputs): weight, activation, issue enable per lane, clear flag and bias.
The product register of a lane is clock-enabled only when its MAC is issued (activation
non-zero and the lane in use): a gated MAC does not switch the multiplier output register.
Stage S2: acc <= (clear ? bias : acc) + (issued ? product : 0). `acc` is valid in S3.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out


class PEArray(wiring.Component):
    def __init__(self, lanes: int, wbits: int, abits: int, bias_bits: int, acc_bits: int):
        self.lanes, self.wbits, self.abits, self.acc_bits = lanes, wbits, abits, acc_bits
        super().__init__({
            "valid": In(1),
            "clear": In(1),
            "w": In(data.ArrayLayout(signed(wbits), lanes)),
            "a": In(data.ArrayLayout(signed(abits), lanes)),
            "en": In(lanes),
            "bias": In(data.ArrayLayout(signed(bias_bits), lanes)),
            "acc": Out(data.ArrayLayout(signed(acc_bits), lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        valid_d = Signal()
        clear_d = Signal()
        en_d = Signal(self.lanes)
        bias_d = Signal.like(self.bias)
        m.d.sync += [valid_d.eq(self.valid), clear_d.eq(self.clear),
                     en_d.eq(Mux(self.valid, self.en, 0))]
        with m.If(self.valid & self.clear):
            m.d.sync += bias_d.eq(self.bias)
        for p in range(self.lanes):
            # no reset: a product is only used the cycle after it is written (en_d), and a
            # register without one is what Yosys moves into the SB_MAC16's output register
            prod = Signal(signed(self.wbits + self.abits), name=f"prod{p}", reset_less=True)
            with m.If(self.valid & self.en[p]):          # clock enable of the product register
                m.d.sync += prod.eq(self.w[p] * self.a[p])
            acc = Signal(signed(self.acc_bits), name=f"acc{p}")
            base = Mux(clear_d, bias_d[p], acc)
            with m.If(valid_d):
                m.d.sync += acc.eq(base + Mux(en_d[p], prod, 0))
            m.d.comb += self.acc[p].eq(acc)
        return m
