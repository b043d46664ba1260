"""The classifier with a few adders: logits = Wc @ n + Bc, `adders` classes at a time.

The same job, ports and counters as `Classifier` (rtl/classifier.py), for a device where the
twelve parallel logit adders and their 12 x 18 flip-flops are too much logic (the UP5K). The
running sums live in a block RAM of K / L words of L lanes (L = `adders`), and each open gate
bit takes S = K / L cycles: in cycle j of the walk the column word (f, j) (classes j L ..
j L + L - 1 of Wc[:, f], a block RAM word of its own) is read together with the sums word j,
and the cycle after, their sum is written back. The next read of word j comes S >= 2 cycles
later, after that write, so the sums need no forwarding; nor do the gate counts n[f], bumped
in the first cycle of a gate bit and read again no earlier than S cycles later.

At `start` the sums are set to the biases and the counts to zero, one word of each per cycle for
max(F, S) cycles, instead of being qualified by a written-since-start bit per word (on the
iCE40 that mask and its decoders were ~100 LUTs). The first gate word comes after the four
block passes, thousands of cycles later; `ready` waits for the clear all the same.

As in `Classifier`: all-zero frame words are dropped in the handshake cycle (counted in
frames_skipped), the last cycle of a frame's walk overlaps the next handshake, the logits are
read through one port with one cycle of latency (the argmax scan, then the record sender),
the bias already in the sums (set at the clear). `busy_cycles` counts the cycles with an add
(S per open gate bit).
"""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .argmax import argmax_scan
from .classifier import classifier_ports
from .util import lowest_set


def column_words(columns: list[int], classes: int, adders: int, wbits: int) -> list[int]:
    """The column memory: word f * 2^ceil(log2 S) + j holds classes j L .. j L + L - 1 of
    column f (S = classes / L words per column)."""
    steps = classes // adders
    stride = 1 << ceil_log2(steps)
    lane = adders * wbits
    words = [0] * (len(columns) * stride)
    for f, col in enumerate(columns):
        for j in range(steps):
            words[f * stride + j] = (col >> (j * lane)) & ((1 << lane) - 1)
    return words


def check_adders(classes: int, adders: int) -> None:
    if classes % adders or classes // adders < 2:
        raise ValueError(f"{adders} adders for {classes} classes: need a divisor of the "
                         f"classes that leaves at least two steps per gate")


class SerialClassifier(wiring.Component):
    def __init__(self, gates: int, frames: int, classes: int, wbits: int, logit_bits: int,
                 columns: list[int], bias: list[int], adders: int,
                 rom_attrs: dict | None = None):
        check_adders(classes, adders)
        self.F, self.T, self.K, self.L = gates, frames, classes, adders
        self.S = classes // adders
        self.wbits, self.logit_bits = wbits, logit_bits
        self.columns, self.bias_values = columns, bias
        self.rom_attrs = rom_attrs or {}
        super().__init__(classifier_ports(gates, frames, classes, logit_bits,
                                          gates * frames * self.S))

    def elaborate(self, platform):
        m = Module()
        F, T, K, L, S, wb, lb = self.F, self.T, self.K, self.L, self.S, self.wbits, self.logit_bits
        stride_bits = ceil_log2(S)
        words = column_words(self.columns, K, L, wb)
        m.submodules.cols = cols = Memory(shape=unsigned(L * wb), depth=len(words), init=words,
                                          attrs=self.rom_attrs)
        # block RAM even when shallow: in flip-flops the sums and their read multiplexer would
        # cost more logic than the adders they replace
        m.submodules.sums = sums = Memory(shape=unsigned(L * lb), depth=S, init=[0] * S,
                                          attrs={"ram_style": "block"})
        cbits = range(T + 1)
        m.submodules.counts = counts = Memory(shape=cbits, depth=F, init=[0] * F)
        c_rd = cols.read_port()
        s_rd, s_wr = sums.read_port(), sums.write_port()
        n_rd, n_wr = counts.read_port(), counts.write_port()
        m.d.comb += [c_rd.en.eq(self.rd_en), s_rd.en.eq(self.rd_en), n_rd.en.eq(self.rd_en)]

        # clearing after start: sums word `clr` is written with its biases, count `clr` zero
        n_clear = max(F, S)
        clearing = Signal()
        clr = Signal(range(n_clear))
        with m.If(clearing):
            m.d.sync += clr.eq(clr + 1)
            with m.If(clr == n_clear - 1):
                m.d.sync += clearing.eq(0)

        # the walk: the current gate (cur_idx, cur_valid) and its step j are registers, bits
        # holds the gates after it
        active = Signal()
        bits = Signal(F)
        cur_idx = Signal(range(F))
        cur_valid = Signal()
        j = Signal(range(S))
        frames = Signal(range(T + 1))
        last_step = Signal()
        m.d.comb += last_step.eq(j == S - 1)

        def walk_from(word):
            _, idx = lowest_set(word)
            m.d.sync += [cur_idx.eq(idx), cur_valid.eq(word != 0), bits.eq(word & (word - 1)),
                         j.eq(0)]

        ready = Signal()
        m.d.comb += ready.eq(active & ~clearing & (bits == 0) & (~cur_valid | last_step)
                             & (frames < T))
        m.d.comb += self.gates.ready.eq(ready)
        with m.If(active & cur_valid):
            m.d.sync += self.busy_cycles.eq(self.busy_cycles + 1)
            with m.If(last_step):
                walk_from(bits)
            with m.Else():
                m.d.sync += j.eq(j + 1)
        with m.If(ready & self.gates.valid):
            word = self.gates.payload
            m.d.sync += frames.eq(frames + 1)
            walk_from(word)
            with m.If(word == 0):
                m.d.sync += self.frames_skipped.eq(self.frames_skipped + 1)

        # stage B, the cycle after: column word and sums word j are out; write back their sum
        valid_b = Signal()
        j_b = Signal.like(j)
        f_b = Signal.like(cur_idx)
        m.d.sync += [valid_b.eq(active & cur_valid), j_b.eq(j), f_b.eq(cur_idx)]
        m.d.comb += c_rd.addr.eq(Cat(j, cur_idx) if stride_bits else cur_idx)
        lanes_new = []
        for p in range(L):
            old = s_rd.data[p * lb:(p + 1) * lb].as_signed()
            lanes_new.append((old + c_rd.data[p * wb:(p + 1) * wb].as_signed())[:lb])
        # the clear writes the biases, so a sums word holds logits and a read needs no adder
        bias_words = Array([Const(sum((self.bias_values[w * L + p] & ((1 << lb) - 1))
                                      << (p * lb) for p in range(L)), L * lb)
                            for w in range(S)])
        m.d.comb += [s_wr.addr.eq(Mux(clearing, clr, j_b)),
                     s_wr.data.eq(Mux(clearing, bias_words[clr], Cat(*lanes_new))),
                     s_wr.en.eq(valid_b | (clearing & (clr < S)))]
        # n[f] += 1 in the first step of each gate bit
        bump = Signal()
        m.d.comb += bump.eq(valid_b & (j_b == 0))
        m.d.comb += [n_wr.addr.eq(Mux(clearing, clr, f_b)),
                     n_wr.data.eq(Mux(clearing, 0, n_rd.data + 1)),
                     n_wr.en.eq(bump | (clearing & (clr < F)))]
        m.d.comb += n_rd.addr.eq(Mux(active, cur_idx, self.count_addr))
        m.d.comb += self.count_data.eq(n_rd.data)

        # argmax scan once every frame has been walked and the last add written
        # (rtl/argmax.py): a logit is out of the sums memory the cycle after its address
        scan_begin = Signal()
        scanning, k = argmax_scan(m, begin=scan_begin, value=self.logit_data, classes=K,
                                  done=self.done, cls=self.cls)
        m.d.comb += scan_begin.eq(active & (frames == T) & ~cur_valid & ~valid_b & ~scanning)
        with m.If(scan_begin):
            m.d.sync += active.eq(0)

        # one logit read port: sums word k // L, lane k % L, a cycle after the address (the
        # argmax scan's, then `logit_addr`)
        idx = Signal(range(K))
        m.d.comb += idx.eq(Mux(scanning, k, self.logit_addr))
        entry = Array([Const(c // L, range(S)) for c in range(K)])
        lane = Array([Const(c % L, range(L)) for c in range(K)])
        lane_q = Signal(range(L))
        m.d.sync += lane_q.eq(lane[idx])
        m.d.comb += s_rd.addr.eq(Mux(active, j, entry[idx]))
        read = Array([s_rd.data[p * lb:(p + 1) * lb].as_signed() for p in range(L)])
        m.d.comb += self.logit_data.eq(read[lane_q])

        with m.If(self.start):
            m.d.sync += [active.eq(1), bits.eq(0), cur_valid.eq(0), frames.eq(0), j.eq(0),
                         valid_b.eq(0), scanning.eq(0), self.done.eq(0),
                         self.frames_skipped.eq(0), self.busy_cycles.eq(0),
                         clearing.eq(1), clr.eq(0)]
        return m
