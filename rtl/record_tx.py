"""The record sender: streams the result record (rtl/record.py order), one 32-bit word per
handshake, `last` on the final word."""
from __future__ import annotations

from amaranth.hdl import Array, Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

RESULT_LAYOUT = data.StructLayout({"data": unsigned(32), "last": 1})


class RecordSender(wiring.Component):
    def __init__(self, n_words: int):
        self.n_words = n_words
        super().__init__({
            "fields": In(data.ArrayLayout(unsigned(32), n_words)),
            "start": In(1),
            "busy": Out(1),
            "result": Out(stream.Signature(RESULT_LAYOUT)),
        })

    def elaborate(self, platform):
        m = Module()
        idx = Signal(range(self.n_words))
        words = Array([self.fields[i] for i in range(self.n_words)])
        m.d.comb += [self.result.valid.eq(self.busy), self.result.payload.data.eq(words[idx]),
                     self.result.payload.last.eq(idx == self.n_words - 1)]
        with m.If(self.busy & self.result.ready):
            with m.If(idx == self.n_words - 1):
                m.d.sync += [self.busy.eq(0), idx.eq(0)]
            with m.Else():
                m.d.sync += idx.eq(idx + 1)
        with m.If(self.start):
            m.d.sync += [self.busy.eq(1), idx.eq(0)]
        return m
