"""The 1x1 segment walk: the channels of a segment, lowest set bit of its mask first, one
per cycle.

The current channel is a register (`c`, `valid`: the segment has one) and `rem` holds the
channels after it, so finding the next set bit is not on the path from the sequencer to
the memory addresses. `go` starts a segment over the mask of source `src`.

The starts of the PW and PW_NEXT sources (first channel, remaining mask) are searched every
cycle and registered, so `go` only chooses among flip-flops for them: neither the choice of
source (which depends on the sequencer's op walk) nor the masks' own logic (the pass's
channel count, the d bank) is in front of a search over the up to 32 channels of a
depthwise result (that chain was the iCE40's longest path). The price is a contract: those
masks must hold their `go`-cycle value in the cycle before, too (START_LAG); the sequencer
waits one cycle longer for a depthwise result's mask (D_WAIT in rtl/sequencer.py) and starts
no PW segment in a step's first cycle. RES comes from a mask memory's read data, new in a
step's first cycle, and HEAD from a register loaded in that cycle, so both are searched in
the `go` cycle; they are only C bits wide.
`advance` moves to the next channel; `first` marks a segment's first op, `last` its last.
"""
from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from .util import lowest_set


# cycles by which a segment's start lags its PW or PW_NEXT mask (the registered search)
START_LAG = 1


class Segment(enum.Enum, shape=2):
    """Where a 1x1 segment's channel mask comes from."""
    PW = 0       # the d mask of the frame the 1x1 work is on
    RES = 1      # the block input's mask (residual; also the head frame's input)
    HEAD = 2     # the head frame's input mask, kept from the frame's first group
    PW_NEXT = 3  # frame-parallel pass: the d mask of the next step's frame


class SegmentWalker(wiring.Component):
    def __init__(self, width: int, channels: int, pw_next: bool):
        self.width, self.channels, self.has_pw_next = width, channels, pw_next
        super().__init__({
            "go": In(1),
            "src": In(Segment),
            "pw": In(width),            # source masks (RES and HEAD: the block's C channels)
            "res": In(width),
            "head": In(width),
            "pw_next": In(width),
            "advance": In(1),
            "c": Out(range(max(width, 2))),
            "valid": Out(1),
            "first": Out(1),
            "last": Out(1),
            "rem": Out(width),
        })

    def elaborate(self, platform):
        m = Module()
        W, C = self.width, self.channels
        rem = self.rem
        _, rem_idx = lowest_set(rem)
        m.d.comb += self.last.eq(rem == 0)

        def walk_start(mask, width):
            v = Signal(width)
            m.d.comb += v.eq(mask[:width])
            _, idx = lowest_set(v)
            return idx, v & (v - 1), v != 0

        def registered(start):
            idx_r, rest_r, nonzero_r = Signal.like(self.c), Signal(len(start[1])), Signal()
            m.d.sync += [idx_r.eq(start[0]), rest_r.eq(start[1]), nonzero_r.eq(start[2])]
            return idx_r, rest_r, nonzero_r

        sources = {Segment.PW: registered(walk_start(self.pw, W)),
                   Segment.RES: walk_start(self.res, C),
                   Segment.HEAD: walk_start(self.head, C)}
        if self.has_pw_next:
            sources[Segment.PW_NEXT] = registered(walk_start(self.pw_next, W))
        with m.If(self.go):
            m.d.sync += self.first.eq(1)
            with m.Switch(self.src):
                for src, (idx, rest, nonzero) in sources.items():
                    with m.Case(src):
                        m.d.sync += [rem.eq(rest), self.c.eq(idx), self.valid.eq(nonzero)]
        with m.Elif(self.advance):
            m.d.sync += [rem.eq(rem & (rem - 1)), self.c.eq(rem_idx), self.valid.eq(1),
                         self.first.eq(0)]
        return m
