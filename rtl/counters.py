"""Hardware performance counters: cycles, issued and gated MACs per layer, and totals.

Per cycle it takes the layer the sequencer spends the cycle on (cycles), the PE lanes'
issued/gated MACs of the op in stage S1 (layer a) and the MACs that zero skipping removed
at a segment start (layer b, gated only). Cleared at the start of an inference.
"""
from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out


class PerfCounters(wiring.Component):
    def __init__(self, n_layers: int, layer_bits: list[tuple[int, int, int]], total_bits: int = 32,
                 inc_bits: int = 16):
        self.n = n_layers
        self.layer_bits = layer_bits       # per layer (cycles, issued, gated) widths
        lw = range(max(n_layers, 2))
        super().__init__({
            "clear": In(1),
            "run": In(1),
            "cyc_valid": In(1),
            "cyc_layer": In(lw),
            "a_layer": In(lw),
            "a_issued": In(inc_bits),
            "a_gated": In(inc_bits),
            "b_layer": In(lw),
            "b_gated": In(inc_bits),
            "cycles": Out(total_bits),
            "total_issued": Out(total_bits),
            "total_gated": Out(total_bits),
            "layer_cycles": Out(data.ArrayLayout(unsigned(total_bits), n_layers)),
            "layer_issued": Out(data.ArrayLayout(unsigned(total_bits), n_layers)),
            "layer_gated": Out(data.ArrayLayout(unsigned(total_bits), n_layers)),
        })

    def elaborate(self, platform):
        m = Module()
        regs = []
        for i, (cb, ib, gb) in enumerate(self.layer_bits):
            cyc = Signal(cb, name=f"cyc{i}")
            iss = Signal(ib, name=f"iss{i}")
            gat = Signal(gb, name=f"gat{i}")
            regs.append((cyc, iss, gat))
            m.d.comb += [self.layer_cycles[i].eq(cyc), self.layer_issued[i].eq(iss),
                         self.layer_gated[i].eq(gat)]
            with m.If(self.clear):
                m.d.sync += [cyc.eq(0), iss.eq(0), gat.eq(0)]
            with m.Else():
                with m.If(self.cyc_valid & (self.cyc_layer == i)):
                    m.d.sync += cyc.eq(cyc + 1)
                with m.If(self.a_layer == i):
                    m.d.sync += iss.eq(iss + self.a_issued)
                ga = Signal(self.a_gated.shape().width + 1, name=f"ga{i}")
                m.d.comb += ga.eq(Mux2(self.a_layer == i, self.a_gated)
                                  + Mux2(self.b_layer == i, self.b_gated))
                m.d.sync += gat.eq(gat + ga)
        with m.If(self.clear):
            m.d.sync += [self.cycles.eq(0), self.total_issued.eq(0), self.total_gated.eq(0)]
        with m.Else():
            with m.If(self.run):
                m.d.sync += self.cycles.eq(self.cycles + 1)
            m.d.sync += [self.total_issued.eq(self.total_issued + self.a_issued),
                         self.total_gated.eq(self.total_gated + self.a_gated + self.b_gated)]
        return m


def Mux2(cond, value):
    from amaranth.hdl import Mux
    return Mux(cond, value, 0)
