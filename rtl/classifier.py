"""The classifier without a multiplier: logits = Wc @ n + Bc with n[f] = sum_t z[f, t].

It consumes the gate map frame by frame. A frame word with no set bit is accepted and
dropped in the handshake cycle (counted in frames_skipped), overlapping the last column add
of the frame before: an all-zero frame costs no cycle. For a non-zero frame it adds one
weight column per set bit (lowest first, one per cycle): logits[k] += Wc[k, f] for the 12
classes in parallel, and n[f] += 1. After T frames it scans the 12 logits for the argmax
(lowest index on ties).
"""
from __future__ import annotations

from amaranth.hdl import Array, Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .util import lowest_set, mul_const, popcount


class Classifier(wiring.Component):
    def __init__(self, gates: int, frames: int, classes: int, wbits: int, logit_bits: int,
                 columns: list[int], bias: list[int]):
        self.F, self.T, self.K = gates, frames, classes
        self.wbits, self.logit_bits = wbits, logit_bits
        self.columns, self.bias_values = columns, bias
        # counters sized for their worst case (every gate of every frame open)
        busy_bits = range(gates * frames + 1)
        add_bits = range(classes * gates * frames + 1)
        super().__init__({
            "gates": In(stream.Signature(unsigned(gates))),
            "start": In(1),
            "done": Out(1),
            "logits": Out(data.ArrayLayout(signed(logit_bits), classes)),
            "cls": Out(range(classes)),
            "counts": Out(data.ArrayLayout(range(frames + 1), gates)),
            "frames_skipped": Out(range(frames + 1)),
            "busy_cycles": Out(busy_bits),
            "adds_issued": Out(add_bits),
            "adds_gated": Out(add_bits),
        })

    def elaborate(self, platform):
        m = Module()
        F, T, K, wb = self.F, self.T, self.K, self.wbits
        m.submodules.cols = cols = Memory(shape=unsigned(K * wb), depth=F, init=self.columns)
        rd = cols.read_port()

        active = Signal()
        bits = Signal(F)
        frames = Signal(range(T + 1))
        valid_b = Signal()
        f_b = Signal(range(F))
        onehot, f_idx = lowest_set(bits)
        after = Signal(F)
        m.d.comb += after.eq(bits & (bits - 1))
        m.d.comb += rd.addr.eq(f_idx)
        m.d.sync += [valid_b.eq(0), f_b.eq(f_idx)]

        ready = Signal()
        m.d.comb += ready.eq(active & (after == 0) & (frames < T))
        m.d.comb += self.gates.ready.eq(ready)
        with m.If(active & (bits != 0)):
            m.d.sync += [valid_b.eq(1), self.busy_cycles.eq(self.busy_cycles + 1),
                         self.adds_issued.eq(self.adds_issued + K), bits.eq(after)]
        with m.If(ready & self.gates.valid):
            word = self.gates.payload
            zeros = Signal(range(F + 1))
            m.d.comb += zeros.eq(F - popcount(word))
            m.d.sync += [bits.eq(word), frames.eq(frames + 1),
                         self.adds_gated.eq(self.adds_gated + mul_const(zeros, K))]
            with m.If(word == 0):
                m.d.sync += self.frames_skipped.eq(self.frames_skipped + 1)

        col = rd.data
        with m.If(valid_b):
            for k in range(K):
                m.d.sync += self.logits[k].eq(self.logits[k] + col[k * wb:(k + 1) * wb].as_signed())
            for f in range(F):
                with m.If(f_b == f):
                    m.d.sync += self.counts[f].eq(self.counts[f] + 1)

        # argmax scan once every frame has been added
        scanning = Signal()
        j = Signal(range(K + 1))
        best = Signal(range(K))
        best_v = Signal(signed(self.logit_bits))
        logit_arr = Array([self.logits[k] for k in range(K)])
        with m.If(active & (frames == T) & (bits == 0) & ~valid_b & ~scanning):
            m.d.sync += [scanning.eq(1), j.eq(1), best.eq(0), best_v.eq(self.logits[0]),
                         active.eq(0)]
        with m.If(scanning):
            with m.If(j == K):
                m.d.sync += [scanning.eq(0), self.done.eq(1), self.cls.eq(best)]
            with m.Else():
                with m.If(logit_arr[j] > best_v):
                    m.d.sync += [best.eq(j), best_v.eq(logit_arr[j])]
                m.d.sync += j.eq(j + 1)

        with m.If(self.start):
            m.d.sync += [active.eq(1), bits.eq(0), frames.eq(0), valid_b.eq(0),
                         scanning.eq(0), self.done.eq(0), self.frames_skipped.eq(0),
                         self.busy_cycles.eq(0), self.adds_issued.eq(0), self.adds_gated.eq(0)]
            for k in range(K):
                m.d.sync += self.logits[k].eq(self.bias_values[k])
            for f in range(F):
                m.d.sync += self.counts[f].eq(0)
        return m
