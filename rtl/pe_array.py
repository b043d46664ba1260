"""The MAC array: `lanes` processing elements, each a gated multiplier and an accumulator.

Stage S1 (inputs): weight, activation, issue enable per lane, clear flag and bias.
The product register of a lane is clock-enabled only when its MAC is issued (activation
non-zero and the lane in use): a gated MAC does not switch the multiplier output register.
Stage S2: acc <= (clear ? bias : acc) + (issued ? product : 0). `acc` is valid in S3.

`accumulator="dsp"` keeps the same function and timing with the accumulators inside the
DSPs (rtl/mac16.py), two per lane: a DSP's accumulator can be loaded or added to, not both
in one cycle, so the bias of a new output (a `clear`) is loaded into the lane's idle DSP in
S1, while the other one still holds the last output's sum, and the two take turns.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .mac16 import ACC_WIDTH, MAC16Accumulator

ACCUMULATORS = ("fabric", "dsp")


class PEArray(wiring.Component):
    def __init__(self, lanes: int, wbits: int, abits: int, bias_bits: int, acc_bits: int,
                 accumulator: str = "fabric"):
        if accumulator not in ACCUMULATORS:
            raise ValueError(f"accumulator '{accumulator}': choose one of "
                             f"{', '.join(ACCUMULATORS)}")
        if accumulator == "dsp" and max(acc_bits, bias_bits) > ACC_WIDTH:
            raise ValueError(f"a {acc_bits}-bit accumulator does not fit the DSP's "
                             f"{ACC_WIDTH} bits")
        self.lanes, self.wbits, self.abits, self.acc_bits = lanes, wbits, abits, acc_bits
        self.accumulator = accumulator
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
        m.d.sync += [valid_d.eq(self.valid), clear_d.eq(self.clear),
                     en_d.eq(Mux(self.valid, self.en, 0))]
        if self.accumulator == "dsp":
            self._dsp_lanes(m, valid_d, en_d)
            return m
        bias_d = Signal.like(self.bias)
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

    def _dsp_lanes(self, m, valid_d, en_d):
        turn = Signal()          # the DSP of each lane that the output in progress uses
        owner = Signal()         # ... of the op in S1 (a clear hands over to the other one)
        owner_d = Signal()       # ... of the op in S2
        shown = Signal()         # ... whose sum `acc` shows: the last one added to or loaded
        load = self.valid & self.clear
        m.d.comb += owner.eq(Mux(load, ~turn, turn))
        m.d.sync += [turn.eq(owner), owner_d.eq(owner)]
        with m.If(valid_d):
            m.d.sync += shown.eq(owner_d)
        for p in range(self.lanes):
            outs = []
            for k in range(2):
                mac = MAC16Accumulator(self.wbits, self.abits)
                m.submodules[f"mac{p}_{k}"] = mac
                mine = owner == k
                m.d.comb += [
                    mac.a.eq(self.w[p]), mac.b.eq(self.a[p]),
                    mac.hold_inputs.eq(~(self.valid & self.en[p] & mine)),
                    mac.load.eq(load & mine), mac.load_value.eq(self.bias[p]),
                    mac.hold_acc.eq(~((load & mine) | (en_d[p] & (owner_d == k)))),
                ]
                outs.append(mac.out[:self.acc_bits])
            m.d.comb += self.acc[p].eq(Mux(shown, outs[1], outs[0]))
