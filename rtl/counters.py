"""Hardware performance counters: cycles, issued and gated MACs per layer, total cycles.

The per-layer counters live in a small memory, not in flip-flops: 39 counters with an adder
each were ~1.4k iCE40 LUTs plus a wide record multiplexer, most of the logic the UP5K could not
hold. Per cycle the sequencer reports the layer it spends the cycle on (S0) and the skipped MACs
of an op it issues (S0); the PE stage reports the issued/gated MACs of that op one cycle later
(S1). Delaying the S0 reports by one cycle puts all three on one layer per cycle (all are then
registered once more; `flush` must come two or more cycles after the last report), so a single
run register accumulates while the layer stays the same and, when it changes, is added into
the layer's memory entry (read in that cycle, written in the next: two consecutive flushes are
always for different layers, so no forwarding is needed). `flush` (end of inference) writes
the last run; afterwards the read port belongs to `rd_layer`. Entries not written since
`clear` read as zero (one valid bit per layer instead of a clearing pass). MAC totals are
the sums of the layers' entries (the record decoder adds them), not counters of their own.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .record import LAYER_FIELDS


class PerfCounters(wiring.Component):
    def __init__(self, n_layers: int, widths: tuple[int, int, int], total_bits: int = 32,
                 inc_bits: int = 16):
        self.n = n_layers
        self.widths = widths               # (cycles, issued, gated) bits of a layer entry
        lw = range(max(n_layers, 2))
        super().__init__({
            "clear": In(1),
            "run": In(1),
            "flush": In(1),
            "rd_en": In(1, init=1),        # block RAM reads; low while the accelerator waits
            "cyc_valid": In(1),            # S0: the sequencer spends this cycle on cyc_layer
            "cyc_layer": In(lw),
            "b_gated": In(inc_bits),       # S0: MACs skipped by the op issued this cycle
            "a_issued": In(inc_bits),      # S1: lanes of last cycle's op
            "a_gated": In(inc_bits),
            "rd_layer": In(lw),
            "rd_data": Out(data.ArrayLayout(unsigned(32), len(LAYER_FIELDS))),
            "cycles": Out(total_bits),
        })

    def elaborate(self, platform):
        m = Module()
        cb, ib, gb = self.widths
        n = max(self.n, 2)
        m.submodules.mem = mem = Memory(shape=unsigned(cb + ib + gb), depth=n, init=[0] * n)
        rd, wr = mem.read_port(), mem.write_port()
        m.d.comb += rd.en.eq(self.rd_en)

        # one event per cycle: the S0 reports delayed to line up with the S1 ones, and all of
        # them registered once more: the S1 counts come from the activation read of the same
        # cycle, and adding them into the run there was the iCE40's longest path
        s0_layer, ev_layer = Signal.like(self.cyc_layer), Signal.like(self.cyc_layer)
        s0_cyc, ev_cyc = Signal(), Signal()
        s0_gated, b_gated = Signal.like(self.b_gated), Signal.like(self.b_gated)
        a_issued, a_gated = Signal.like(self.a_issued), Signal.like(self.a_gated)
        m.d.sync += [s0_layer.eq(self.cyc_layer), s0_cyc.eq(self.cyc_valid),
                     s0_gated.eq(self.b_gated),
                     ev_layer.eq(s0_layer), ev_cyc.eq(s0_cyc), b_gated.eq(s0_gated),
                     a_issued.eq(self.a_issued), a_gated.eq(self.a_gated)]
        ev_gated = Signal(len(self.b_gated) + 1)
        m.d.comb += ev_gated.eq(a_gated + b_gated)

        active = Signal()                  # between clear and the final flush
        valid = Signal(n)                  # entry written since clear
        run_layer = Signal.like(ev_layer)
        run_c, run_i, run_g = Signal(cb), Signal(ib), Signal(gb)
        f_pend = Signal()
        f_layer = Signal.like(ev_layer)
        f_c, f_i, f_g = Signal(cb), Signal(ib), Signal(gb)

        same = ev_layer == run_layer
        sum_c = Signal(cb)
        sum_i = Signal(ib)
        sum_g = Signal(gb)
        m.d.comb += [sum_c.eq(run_c + ev_cyc), sum_i.eq(run_i + a_issued),
                     sum_g.eq(run_g + ev_gated)]

        m.d.sync += f_pend.eq(0)
        with m.If(self.clear):
            m.d.sync += [active.eq(1), valid.eq(0), run_layer.eq(0), run_c.eq(0), run_i.eq(0),
                         run_g.eq(0)]
        with m.Elif(active & (self.flush | ~same)):
            # add the run into its entry; a final flush takes this cycle's event along
            keep = self.flush & same
            m.d.sync += [f_pend.eq(1), f_layer.eq(run_layer),
                         f_c.eq(Mux(keep, sum_c, run_c)), f_i.eq(Mux(keep, sum_i, run_i)),
                         f_g.eq(Mux(keep, sum_g, run_g)),
                         run_layer.eq(ev_layer), run_c.eq(ev_cyc), run_i.eq(a_issued),
                         run_g.eq(ev_gated)]
            with m.If(self.flush):
                m.d.sync += active.eq(0)
        with m.Elif(active):
            m.d.sync += [run_c.eq(sum_c), run_i.eq(sum_i), run_g.eq(sum_g)]

        m.d.comb += rd.addr.eq(Mux(active, run_layer, self.rd_layer))
        old = Signal(cb + ib + gb)
        m.d.comb += old.eq(Mux(valid.bit_select(f_layer, 1), rd.data, 0))
        m.d.comb += [wr.addr.eq(f_layer), wr.en.eq(f_pend),
                     wr.data.eq(Cat((old[:cb] + f_c)[:cb], (old[cb:cb + ib] + f_i)[:ib],
                                    (old[cb + ib:] + f_g)[:gb]))]
        with m.If(f_pend):
            m.d.sync += valid.bit_select(f_layer, 1).eq(1)

        rd_q = Signal.like(self.rd_layer)
        m.d.sync += rd_q.eq(self.rd_layer)
        entry = Signal(cb + ib + gb)
        m.d.comb += entry.eq(Mux(valid.bit_select(rd_q, 1), rd.data, 0))
        m.d.comb += [self.rd_data[0].eq(entry[:cb]), self.rd_data[1].eq(entry[cb:cb + ib]),
                     self.rd_data[2].eq(entry[cb + ib:])]

        with m.If(self.clear):
            m.d.sync += self.cycles.eq(0)
        with m.Elif(self.run):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        return m
