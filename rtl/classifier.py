"""The classifier without a multiplier: logits = Wc @ n + Bc with n[f] = sum_t z[f, t].

It consumes the gate map frame by frame. A frame word with no set bit is accepted and
dropped in the handshake cycle (counted in frames_skipped), overlapping the last column add
of the frame before: an all-zero frame costs no cycle. For a non-zero frame it adds one
weight column per set bit (lowest first, one per cycle): sums[k] += Wc[k, f] for the 12
classes in parallel, and n[f] += 1. After T frames it scans the 12 logits sums[k] + Bc[k]
for the argmax (lowest index on ties).

The gate counts n[f] live in a memory (read with the column, written back one cycle later;
a count read in the cycle of its own write-back is forwarded), not in 32 counters: on the
iCE40 that is one block RAM instead of ~300 flip-flops and their adders. Once `done`, the
memory's read port belongs to `count_addr` (one cycle of latency). Column additions are one
per set gate bit, so the issued and gated additions follow from `busy_cycles` (the record
decoder derives them).

The logits are read through one registered port, `logit_data` = sums[`logit_addr`] + bias a
cycle later, shared by the argmax scan and, once `done`, the record sender: a second 12-way
32-bit multiplexer for the record was ~250 iCE40 LUTs.
"""
from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .argmax import argmax_scan
from .util import lowest_set


def classifier_ports(gates: int, frames: int, classes: int, logit_bits: int,
                     busy_max: int) -> dict:
    """The ports both classifiers have (this one and rtl/classifier_serial.py); the counters
    are sized for their worst case, every gate of every frame open (`busy_max` cycles)."""
    return {
        "gates": In(stream.Signature(unsigned(gates))),
        "start": In(1),
        "rd_en": In(1, init=1),         # block RAM reads; low while the accelerator waits
        "done": Out(1),
        "cls": Out(range(classes)),
        "count_addr": In(range(gates)),
        "count_data": Out(range(frames + 1)),
        "logit_addr": In(range(classes)),
        "logit_data": Out(signed(logit_bits)),
        "frames_skipped": Out(range(frames + 1)),
        "busy_cycles": Out(range(busy_max + 1)),
    }


class Classifier(wiring.Component):
    def __init__(self, gates: int, frames: int, classes: int, wbits: int, logit_bits: int,
                 columns: list[int], bias: list[int], rom_attrs: dict | None = None):
        self.F, self.T, self.K = gates, frames, classes
        self.wbits, self.logit_bits = wbits, logit_bits
        self.columns, self.bias_values = columns, bias
        self.rom_attrs = rom_attrs or {}
        super().__init__(classifier_ports(gates, frames, classes, logit_bits, gates * frames))

    def elaborate(self, platform):
        m = Module()
        F, T, K, wb = self.F, self.T, self.K, self.wbits
        m.submodules.cols = cols = Memory(shape=unsigned(K * wb), depth=F, init=self.columns,
                                            attrs=self.rom_attrs)
        rd = cols.read_port()
        cbits = range(T + 1)
        m.submodules.counts = counts = Memory(shape=cbits, depth=F, init=[0] * F)
        n_rd, n_wr = counts.read_port(), counts.write_port()
        m.d.comb += [rd.en.eq(self.rd_en), n_rd.en.eq(self.rd_en)]
        n_valid = Signal(F)                 # written since start; others read as zero

        # the walk over a gate word's open gates: the current gate (cur_idx, cur_valid) is
        # a register and bits holds the gates after it, so the column and count addresses
        # come straight from flip-flops (the lowest-set-bit search in front of them was the
        # iCE40's longest path)
        active = Signal()
        bits = Signal(F)
        cur_idx = Signal(range(F))
        cur_valid = Signal()
        frames = Signal(range(T + 1))
        valid_b = Signal()
        f_b = Signal(range(F))
        m.d.comb += rd.addr.eq(cur_idx)
        m.d.comb += n_rd.addr.eq(Mux(active, cur_idx, self.count_addr))
        m.d.sync += [valid_b.eq(0), f_b.eq(cur_idx)]

        def walk_from(word):
            _, idx = lowest_set(word)
            m.d.sync += [cur_idx.eq(idx), cur_valid.eq(word != 0), bits.eq(word & (word - 1))]

        ready = Signal()
        m.d.comb += ready.eq(active & (bits == 0) & (frames < T))
        m.d.comb += self.gates.ready.eq(ready)
        with m.If(active & cur_valid):
            m.d.sync += [valid_b.eq(1), self.busy_cycles.eq(self.busy_cycles + 1)]
            walk_from(bits)
        with m.If(ready & self.gates.valid):
            word = self.gates.payload
            m.d.sync += frames.eq(frames + 1)
            walk_from(word)
            with m.If(word == 0):
                m.d.sync += self.frames_skipped.eq(self.frames_skipped + 1)

        # column sums without the bias: the bias is added once, where a logit is read, so the
        # twelve adders take the column word alone (a bias/column multiplexer in front of
        # them was one iCE40 LUT per adder bit)
        sums = [Signal(signed(self.logit_bits), name=f"sum{k}") for k in range(K)]
        col = rd.data
        with m.If(valid_b):
            for k in range(K):
                m.d.sync += sums[k].eq(sums[k] + col[k * wb:(k + 1) * wb].as_signed())
        # n[f_b] += 1: read in the cycle before, forwarded if that cycle wrote the same entry
        last_addr = Signal.like(f_b)
        last_val = Signal(cbits)
        last_en = Signal()
        old = Signal(cbits)
        m.d.comb += old.eq(Mux(last_en & (last_addr == f_b), last_val,
                               Mux(n_valid.bit_select(f_b, 1), n_rd.data, 0)))
        m.d.comb += [n_wr.addr.eq(f_b), n_wr.data.eq(old + 1), n_wr.en.eq(valid_b)]
        m.d.sync += [last_addr.eq(f_b), last_val.eq(old + 1), last_en.eq(valid_b)]
        with m.If(valid_b):
            m.d.sync += n_valid.bit_select(f_b, 1).eq(1)
        addr_q = Signal.like(self.count_addr)
        m.d.sync += addr_q.eq(self.count_addr)
        m.d.comb += self.count_data.eq(Mux(n_valid.bit_select(addr_q, 1), n_rd.data, 0))

        # argmax scan once every frame has been added (rtl/argmax.py): logit j is read in one
        # cycle and compared in the next
        sum_arr = Array(sums)
        bias_arr = Array([Const(b, signed(self.logit_bits)) for b in self.bias_values])
        scan_begin = Signal()
        scanning, j = argmax_scan(m, begin=scan_begin, value=self.logit_data,
                                  classes=K, done=self.done, cls=self.cls)
        m.d.comb += scan_begin.eq(active & (frames == T) & ~cur_valid & ~valid_b & ~scanning)
        with m.If(scan_begin):
            m.d.sync += active.eq(0)
        idx = Signal(range(K))
        m.d.comb += idx.eq(Mux(scanning, j, self.logit_addr))
        m.d.sync += self.logit_data.eq(sum_arr[idx] + bias_arr[idx])

        with m.If(self.start):
            m.d.sync += [active.eq(1), bits.eq(0), cur_valid.eq(0), frames.eq(0), valid_b.eq(0),
                         scanning.eq(0), self.done.eq(0), self.frames_skipped.eq(0),
                         self.busy_cycles.eq(0), n_valid.eq(0), last_en.eq(0)]
            for k in range(K):
                m.d.sync += sums[k].eq(0)
        return m
