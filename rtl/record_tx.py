"""The record sender: streams the result record (rtl/record.py order), one 32-bit word per
handshake, `last` on the final word.

The record is `head` words (logits, class, gate counts, totals), then three words per PE layer
read from the performance counters' memory (`layer_addr` -> `layer_data`, one cycle of read
latency: the stream pauses one cycle after each layer), then `tail` words (the classifier's).
"""
from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

RESULT_LAYOUT = data.StructLayout({"data": unsigned(32), "last": 1})
LAYER_WORDS = 3


class RecordSender(wiring.Component):
    def __init__(self, n_head: int, n_layers: int = 0, n_tail: int = 0):
        self.n_head, self.n_layers, self.n_tail = n_head, n_layers, n_tail
        self.n_words = n_head + LAYER_WORDS * n_layers + n_tail
        super().__init__({
            "head": In(data.ArrayLayout(unsigned(32), n_head)),
            "tail": In(data.ArrayLayout(unsigned(32), max(n_tail, 1))),
            "layer_addr": Out(range(max(n_layers, 2))),
            "layer_data": In(data.ArrayLayout(unsigned(32), LAYER_WORDS)),
            "start": In(1),
            "busy": Out(1),
            "result": Out(stream.Signature(RESULT_LAYOUT)),
        })

    def elaborate(self, platform):
        m = Module()
        nh, nl, nt = self.n_head, self.n_layers, self.n_tail
        idx = Signal(range(self.n_words))
        field = Signal(range(LAYER_WORDS))
        layer = self.layer_addr
        addr_q = Signal.like(layer)
        m.d.sync += addr_q.eq(layer)
        in_head = idx < nh
        in_layers = ~in_head & (idx < nh + LAYER_WORDS * nl)
        head = Array([self.head[i] for i in range(nh)])
        tail = Array([self.tail[i] for i in range(max(nt, 1))])
        layer_word = Array([self.layer_data[i] for i in range(LAYER_WORDS)])[field]
        word = Mux(in_head, head[idx], Mux(in_layers, layer_word,
                                           tail[(idx - (nh + LAYER_WORDS * nl))[:max(nt, 1).bit_length()]]))
        fresh = ~in_layers | (addr_q == layer)     # the memory shows this layer's entry
        m.d.comb += [self.result.valid.eq(self.busy & fresh), self.result.payload.data.eq(word),
                     self.result.payload.last.eq(idx == self.n_words - 1)]
        with m.If(self.result.valid & self.result.ready):
            with m.If(idx == self.n_words - 1):
                m.d.sync += [self.busy.eq(0), idx.eq(0)]
            with m.Else():
                m.d.sync += idx.eq(idx + 1)
            with m.If(in_layers):
                with m.If(field == LAYER_WORDS - 1):
                    m.d.sync += [field.eq(0), layer.eq(layer + 1)]
                with m.Else():
                    m.d.sync += field.eq(field + 1)
        with m.If(self.start):
            m.d.sync += [self.busy.eq(1), idx.eq(0), field.eq(0), layer.eq(0)]
        return m
