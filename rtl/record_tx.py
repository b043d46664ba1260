"""The record sender: streams the result record (rtl/record.py order), one 32-bit word per
handshake, `last` on the final word.

The record is a list of sections. A `Direct` section is a few words on input ports; a
`FromMemory` section is `entries` x `words` read from a memory that another component owns
until the inference ends (gate counts, per-layer counters): the sender drives the shared
`addr` port and takes the entry on that section's data port one cycle later, so the stream
pauses one cycle after each entry. Only direct words need a multiplexer.
"""
from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Array, Const, Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

RESULT_LAYOUT = data.StructLayout({"data": unsigned(32), "last": 1})


@dataclass(frozen=True)
class Direct:
    name: str
    words: int


@dataclass(frozen=True)
class FromMemory:
    name: str
    entries: int
    words: int = 1


class RecordSender(wiring.Component):
    def __init__(self, sections: list):
        self.sections = sections
        self.n_words = sum(s.words if isinstance(s, Direct) else s.entries * s.words
                           for s in sections)
        max_entries = max([s.entries for s in sections if isinstance(s, FromMemory)] + [2])
        ports = {s.name: In(data.ArrayLayout(unsigned(32), s.words)) for s in sections}
        super().__init__({
            **ports,
            "addr": Out(range(max_entries)),
            "start": In(1),
            "busy": Out(1),
            "result": Out(stream.Signature(RESULT_LAYOUT)),
        })

    def elaborate(self, platform):
        m = Module()
        n = len(self.sections)
        sec = Signal(range(max(n, 2)))
        word = Signal(range(max(max(s.words for s in self.sections), 2)))   # within a Direct / an entry
        entry = self.addr
        addr_q = Signal.like(entry)
        m.d.sync += addr_q.eq(entry)

        datas, lasts, fresh = [], [], []
        for s in self.sections:
            port = getattr(self, s.name)
            datas.append(Array([port[i] for i in range(s.words)])[word])
            if isinstance(s, Direct):
                lasts.append(word == s.words - 1)
                fresh.append(Const(1))
            else:
                lasts.append((word == s.words - 1) & (entry == s.entries - 1))
                fresh.append(addr_q == entry)          # the memory shows this entry
        is_mem = Array([Const(int(isinstance(s, FromMemory))) for s in self.sections])[sec]
        entry_last = Array([Const(s.words - 1) for s in self.sections])[sec] == word
        sec_last = Array(lasts)[sec]
        m.d.comb += [self.result.valid.eq(self.busy & Array(fresh)[sec]),
                     self.result.payload.data.eq(Array(datas)[sec]),
                     self.result.payload.last.eq(sec_last & (sec == n - 1))]
        with m.If(self.result.valid & self.result.ready):
            with m.If(sec_last):
                m.d.sync += [word.eq(0), entry.eq(0)]
                with m.If(sec == n - 1):
                    m.d.sync += [self.busy.eq(0), sec.eq(0)]
                with m.Else():
                    m.d.sync += sec.eq(sec + 1)
            with m.Elif(is_mem & entry_last):
                m.d.sync += [word.eq(0), entry.eq(entry + 1)]
            with m.Else():
                m.d.sync += word.eq(word + 1)
        with m.If(self.start):
            m.d.sync += [self.busy.eq(1), sec.eq(0), word.eq(0), entry.eq(0)]
        return m
