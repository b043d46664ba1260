"""Requantization: arithmetic shift with round half to even, then clamp (docs/integer-model.md).

`requant_value` builds the logic for one value; `Requant` is a lane-parallel combinational
component around it (one unit per PE lane). The shift is a signal: per channel for depthwise
layers, a per-layer constant otherwise; only the range [shift_min, shift_max] that the export
uses is built (a barrel shifter of log2(range) stages, plus the sticky-bit mask).
"""
from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out


def requant_value(m: Module, x, shift, shift_min: int, shift_max: int, lo, hi, out_bits: int):
    """Return a signed(out_bits) signal: clamp(round_half_even(x / 2**shift), lo, hi).

    x: signed value; shift: signed value in [shift_min, shift_max]; lo, hi: values.
    """
    xw = len(x)
    pos = Signal()
    m.d.comb += pos.eq(shift > 0)
    candidates = []
    if shift_max >= 1:
        r1 = Signal(range(max(shift_max, 1)))               # shift - 1 when shift >= 1
        m.d.comb += r1.eq(Mux(pos, shift - 1, 0))
        y = Signal(signed(xw))
        m.d.comb += y.eq(x.as_signed() >> r1)
        mask = Signal(unsigned(xw + 1))
        m.d.comb += mask.eq((Const(1, unsigned(xw + 1)) << r1) - 1)
        sticky = Signal()
        m.d.comb += sticky.eq((x.as_unsigned() & mask[:xw]) != 0)
        q = Signal(signed(xw))
        m.d.comb += q.eq(y >> 1)
        up = Signal()
        m.d.comb += up.eq(y[0] & (sticky | q[0]))
        right = Signal(signed(xw + 1))
        m.d.comb += right.eq(q + up)
        candidates.append(right)
    if shift_min <= 0:
        lmax = -shift_min
        left_amt = Signal(range(lmax + 1))
        m.d.comb += left_amt.eq(Mux(pos, 0, -shift))
        left = Signal(signed(xw + lmax))
        m.d.comb += left.eq(x.as_signed() << left_amt)
        candidates.append(left)
    if len(candidates) == 2:
        val = Signal(signed(max(len(c) for c in candidates)))
        m.d.comb += val.eq(Mux(pos, candidates[0], candidates[1]))
    else:
        val = candidates[0]
    out = Signal(signed(out_bits))
    m.d.comb += out.eq(Mux(val < lo, lo, Mux(val > hi, hi, val)))
    return out


class Requant(wiring.Component):
    """lanes x requant: y[p] = clamp(round_half_even(x[p] >> shift[p]), lo, hi)."""

    def __init__(self, lanes: int, in_bits: int, shift_min: int, shift_max: int, out_bits: int):
        self.lanes, self.in_bits, self.out_bits = lanes, in_bits, out_bits
        self.shift_min, self.shift_max = shift_min, shift_max
        sbits = max(abs(shift_min), abs(shift_max), 1).bit_length() + 1
        super().__init__({
            "x": In(data.ArrayLayout(signed(in_bits), lanes)),
            "shift": In(data.ArrayLayout(signed(sbits), lanes)),
            "lo": In(signed(out_bits)),
            "hi": In(signed(out_bits)),
            "y": Out(data.ArrayLayout(signed(out_bits), lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        for p in range(self.lanes):
            v = requant_value(m, self.x[p], self.shift[p], self.shift_min, self.shift_max,
                              self.lo, self.hi, self.out_bits)
            m.d.comb += self.y[p].eq(v)
        return m
