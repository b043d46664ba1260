"""Requantization: arithmetic shift with round half to even, then clamp (docs/integer-model.md).

`round_shift` and `clamp_value` build the logic for one value; `Requant` is a lane-parallel
component around them (one unit per PE lane), combinational or with a register between.
The shift is a signal: per channel for depthwise layers, a per-layer constant otherwise; only
the range [shift_min, shift_max] that the export uses is built (a barrel shifter of
log2(range) stages, plus the sticky-bit mask).
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out


def round_shift(m: Module, x, shift, shift_min: int, shift_max: int):
    """round_half_even(x / 2**shift) for a signed x and a shift in [shift_min, shift_max].

    Only the final rounding increment is an addition: x >> (shift - 1) is taken as
    (2 x) >> shift and the sticky mask comes from a case table on the shift, because on the
    iCE40 a decrement or `(1 << n) - 1` each cost a carry chain on the longest path."""
    xw = len(x)
    sbits = len(shift)
    pos = Signal()
    m.d.comb += pos.eq(~shift[sbits - 1] & (shift != 0))
    candidates = []
    if shift_max >= 1:
        amt = Signal(range(shift_max + 1))                  # shift when shift >= 1, else 0
        m.d.comb += amt.eq(Mux(pos, shift[:sbits - 1], 0))
        y = Signal(signed(xw))                              # x >> (shift - 1)
        m.d.comb += y.eq((x.as_signed() << 1) >> amt)
        mask = Signal(unsigned(xw))                         # the bits below y's lowest
        with m.Switch(amt):
            for v in range(2, shift_max + 1):
                with m.Case(v):
                    m.d.comb += mask.eq((1 << min(v - 1, xw)) - 1)
        sticky = Signal()
        m.d.comb += sticky.eq((x.as_unsigned() & mask) != 0)
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
        with m.Switch(shift):
            for v in range(shift_min, 0):
                with m.Case(v):
                    m.d.comb += left_amt.eq(-v)
        left = Signal(signed(xw + lmax))
        m.d.comb += left.eq(x.as_signed() << left_amt)
        candidates.append(left)
    if len(candidates) == 2:
        val = Signal(signed(max(len(c) for c in candidates)))
        m.d.comb += val.eq(Mux(pos, candidates[0], candidates[1]))
    else:
        val = candidates[0]
    return val


def clamp_value(m: Module, val, lo, hi, out_bits: int):
    out = Signal(signed(out_bits))
    m.d.comb += out.eq(Mux(val < lo, lo, Mux(val > hi, hi, val)))
    return out


class Requant(wiring.Component):
    """lanes x requant: y[p] = clamp(round_half_even(x[p] >> shift[p]), lo, hi).

    `registered`: the shifted and rounded values are registered, so y follows x and shift by
    one cycle and lo, hi belong to that later cycle (two pipeline stages, half the path)."""

    def __init__(self, lanes: int, in_bits: int, shift_min: int, shift_max: int, out_bits: int,
                 registered: bool = False):
        self.registered = registered
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
            val = round_shift(m, self.x[p], self.shift[p], self.shift_min, self.shift_max)
            if self.registered:
                held = Signal.like(val, name=f"rounded{p}")
                m.d.sync += held.eq(val)
                val = held
            m.d.comb += self.y[p].eq(clamp_value(m, val, self.lo, self.hi, self.out_bits))
        return m
