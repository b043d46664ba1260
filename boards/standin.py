"""A tiny stand-in for the accelerator with the same ports, for tests and UART bring-up.

It takes one clip (`features`, frame by frame) and answers with a full-length result record
(rtl/record.py order) computed from a trivial function, `standin_record()`:
  gate_count[f] = number of frames t with x[f, t] > 0
  logit[k]      = gate_count[k]                       (k = 0..11)
  class         = argmax(logit), lowest index on ties
  cycles        = clock cycles from the first feature to the first result word
  every other counter = 0
"""
from __future__ import annotations

import numpy as np
from amaranth import Array, Module, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from sparknet_hw.rtl.record import N_CLASSES, N_GATES, record_fields
from sparknet_hw.quant.export_types import ExportLike, as_export

from .framer import result_layout


def standin_record(model: dict, x, cycles: int | None = None) -> list[int]:
    """The words the stand-in answers for features x [F, T] (cycles left as given)."""
    x = np.asarray(x)
    counts = (x > 0).sum(axis=1).astype(int)
    logits = counts[:N_CLASSES]
    words = {f"logit{k}": int(logits[k]) for k in range(N_CLASSES)}
    words["class"] = int(np.argmax(logits))
    words.update({f"gate_count{f}": int(counts[f]) for f in range(N_GATES)})
    words["cycles"] = cycles or 0
    return [words.get(name, 0) for name in record_fields(model)]


class StandInAccelerator(wiring.Component):
    def __init__(self, model: ExportLike):
        model = as_export(model)
        self.n_features = model.features
        self.n_frames = model.frames
        self.n_words = len(record_fields(model))
        self.cycles_index = record_fields(model).index("cycles")
        super().__init__({"features": In(stream.Signature(signed(8))),
                          "result": Out(stream.Signature(result_layout()))})

    def elaborate(self, platform):
        m = Module()
        F, T = self.n_features, self.n_frames
        counts = Array(Signal(range(T + 1), name=f"count{f}") for f in range(F))
        f = Signal(range(F))
        t = Signal(range(T))
        cycles = Signal(32)
        best = Signal(range(N_CLASSES))
        k = Signal(range(N_CLASSES + 1))
        word_no = Signal(range(self.n_words))
        word = Signal(32)

        with m.FSM():
            with m.State("RECEIVE"):
                m.d.comb += self.features.ready.eq(1)
                with m.If((f != 0) | (t != 0)):
                    m.d.sync += cycles.eq(cycles + 1)
                with m.If(self.features.valid):
                    with m.If((f == 0) & (t == 0)):
                        for c in counts:
                            m.d.sync += c.eq(0)
                        m.d.sync += cycles.eq(1)
                    with m.If(self.features.payload > 0):
                        m.d.sync += counts[f].eq(Array(counts)[f] + 1)
                        with m.If((f == 0) & (t == 0)):
                            m.d.sync += counts[0].eq(1)
                    m.d.sync += f.eq(f + 1)
                    with m.If(f == F - 1):
                        m.d.sync += [f.eq(0), t.eq(t + 1)]
                        with m.If(t == T - 1):
                            m.d.sync += [t.eq(0), best.eq(0), k.eq(1)]
                            m.next = "ARGMAX"
            with m.State("ARGMAX"):
                m.d.sync += cycles.eq(cycles + 1)
                with m.If(k == N_CLASSES):
                    m.d.sync += word_no.eq(0)
                    m.next = "SEND"
                with m.Else():
                    with m.If(counts[k] > counts[best]):
                        m.d.sync += best.eq(k)
                    m.d.sync += k.eq(k + 1)
            with m.State("SEND"):
                with m.If(word_no < N_CLASSES):
                    m.d.comb += word.eq(counts[word_no])
                with m.Elif(word_no == N_CLASSES):
                    m.d.comb += word.eq(best)
                with m.Elif(word_no < N_CLASSES + 1 + N_GATES):
                    m.d.comb += word.eq(counts[(word_no - (N_CLASSES + 1))[:5]])
                with m.Elif(word_no == self.cycles_index):
                    m.d.comb += word.eq(cycles)
                m.d.comb += [self.result.valid.eq(1), self.result.payload.data.eq(word),
                             self.result.payload.last.eq(word_no == self.n_words - 1)]
                with m.If(self.result.ready):
                    m.d.sync += word_no.eq(word_no + 1)
                    with m.If(word_no == self.n_words - 1):
                        m.next = "RECEIVE"
        return m
