"""The gate unit: z[f, t] = head_acc[f, t] > 0, collected into one 32-bit word per frame.

Head results arrive one lane group (P gates) at a time; after the frame's last group the
word is sent to the classifier (a one-cycle valid pulse: the sequencer only starts a head
frame when the FIFO behind has room for it, so `ready` is not needed).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out


class GateUnit(wiring.Component):
    def __init__(self, lanes: int, gates: int, acc_bits: int):
        assert gates % lanes == 0
        self.lanes, self.gates = lanes, gates
        self.groups = gates // lanes
        super().__init__({
            "valid": In(1),
            "grp": In(range(max(self.groups, 2))),
            "acc": In(data.ArrayLayout(signed(acc_bits), lanes)),
            "word": Out(stream.Signature(unsigned(gates))),
        })

    def elaborate(self, platform):
        m = Module()
        P = self.lanes
        word = Signal(self.gates)
        bits = Signal(P)
        m.d.comb += bits.eq(Cat(*[self.acc[p] > 0 for p in range(P)]))
        nxt = Signal(self.gates)
        shifted = Signal(self.gates)
        m.d.comb += shifted.eq(bits << (self.grp * P)[:8])
        m.d.comb += nxt.eq(Mux(self.grp == 0, 0, word) | shifted)
        # the word register is the payload: it is valid the cycle after the last group, and
        # the next frame's first group can only change it at the end of that cycle
        m.d.comb += self.word.payload.eq(word)
        m.d.sync += self.word.valid.eq(0)
        with m.If(self.valid):
            m.d.sync += word.eq(nxt)
            with m.If(self.grp == self.groups - 1):
                m.d.sync += self.word.valid.eq(1)
        return m
