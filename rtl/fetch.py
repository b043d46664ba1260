"""Operand fetch: from the sequencer's op to the PE array's inputs (stages S0, S1, S1b).

  S0  the op is registered (`op`), then the activation word addresses (X / B buffer, d
      memory) are computed from it
  S1  the op reaches `t1`: weight and bias/shift word addresses; memory data -> per-lane
      activations (own lane for depthwise, one broadcast value for 1x1, from the d memory
      for pointwise) and the lanes in use
  S1b the selected operands and lanes are registered; the zero test gives the issue enables
      and the issued/gated counts; the op continues as `op_s1b`

The weight and bias/shift ROMs are read here; the bias/shift word also leaves as `aux`
(depthwise shifts are per channel, chosen by the requant stage).
"""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory, ReadPort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .buffers import buffers_signature, d_words
from .config import Plan
from .sequencer import OpKind, op_layout
from .util import mul_const, popcount


class OperandFetch(wiring.Component):
    def __init__(self, plan: Plan):
        self.plan = plan
        P = plan.P
        OL = op_layout(plan)
        sig = buffers_signature(plan).members

        def rd(n):                      # a buffer read port, from the reader's side
            return In(sig[n].signature)

        super().__init__({
            "op": In(OL),
            "rd_en": In(1, init=1),         # block RAM reads; low while the accelerator waits
            "x_rd": rd("x_rd"), "b_rd": rd("b_rd"), "d_rd": rd("d_rd"),
            # PE array inputs
            "valid": Out(1),
            "clear": Out(1),
            "w": Out(data.ArrayLayout(signed(plan.wbits), P)),
            "a": Out(data.ArrayLayout(signed(plan.act_bits), P)),
            "en": Out(P),
            "bias": Out(data.ArrayLayout(signed(plan.aux_bits), P)),
            # S1b: the op, its bias/shift word and its issued / gated lanes
            "op_s1b": Out(OL),
            "aux": Out(P * plan.aux_bits),
            "issued": Out(range(P + 1)),
            "gated": Out(range(P + 1)),
        })

    def elaborate(self, platform):
        plan = self.plan
        m = Module()
        P, T = plan.P, plan.T
        lb, wb, ab = plan.lane_bits, plan.wbits, plan.aux_bits
        layers = plan.layers
        gd = d_words(plan)
        db = plan.dbits

        m.submodules.wmem = wmem = Memory(shape=unsigned(P * wb), depth=len(plan.weight_image),
                                          init=plan.weight_image)
        m.submodules.auxmem = auxmem = Memory(shape=unsigned(P * ab), depth=len(plan.aux_image),
                                              init=plan.aux_image, attrs=plan.rom_attrs)
        w_rd, a_rd = wmem.read_port(), auxmem.read_port()
        x_rd, b_rd, d_rd = self.x_rd, self.b_rd, self.d_rd
        m.d.comb += [port.en.eq(self.rd_en) for port in (w_rd, a_rd, d_rd)]

        # ---------------- S0: addresses ----------------
        # the sequencer's op is registered first: its next-state logic and the address
        # arithmetic were one path (the UP5K's longest); the sequencer's reports to the
        # counters are delayed to match (in the top)
        OL = op_layout(plan)
        op = Signal(OL)
        m.d.sync += op.eq(self.op)
        t1 = Signal(OL)
        m.d.sync += t1.eq(op)
        # weights and biases/shifts are read one stage later than the activations, from
        # t1: they meet the registered operands in S1b
        waddr = Signal(range(max(len(plan.weight_image), 2)))
        aaddr = Signal(range(max(len(plan.aux_image), 2)))
        with m.Switch(t1.layer):
            for lay in layers:
                with m.Case(lay.index):
                    if lay.frames:    # a word per (channel, window offset); shifts per channel
                        m.d.comb += [waddr.eq(lay.wbase + mul_const(t1.c, lay.kernel + P - 1)
                                              + t1.k),
                                     aaddr.eq(lay.abase + t1.c)]
                    elif lay.kind == "dw":
                        m.d.comb += [waddr.eq(lay.wbase + mul_const(t1.grp, lay.kernel) + t1.k),
                                     aaddr.eq(lay.abase + t1.grp)]
                    else:
                        m.d.comb += [waddr.eq(lay.wbase + mul_const(t1.grp, lay.c_in) + t1.c),
                                     aaddr.eq(lay.abase + t1.grp)]
        A_FR = Array([Const(int(p.frames)) for p in plan.passes])
        is_dw0 = op.kind == OpKind.DW
        fr0 = A_FR[op.pass_]
        row = Mux(is_dw0, op.u, op.t)
        col = Mux(is_dw0 & ~fr0, op.grp, op.c >> plan.lg_p)
        m.d.comb += d_rd.addr.eq(mul_const(op.bank, gd) + Mux(fr0, op.c, op.c >> plan.lg_p))
        # X and B are read only for an op that uses the word (every kind but the pointwise,
        # which reads d): a single-port buffer (rtl/spram.py) may be written in the other cycles
        A_ISB = Array([Const(int(p.a_buf == "B")) for p in plan.passes])
        reads_a = self.rd_en & op.valid & (op.kind != OpKind.PW)
        m.d.comb += [x_rd.en.eq(reads_a & ~A_ISB[op.pass_]), b_rd.en.eq(reads_a & A_ISB[op.pass_])]
        m.d.comb += [w_rd.addr.eq(waddr), a_rd.addr.eq(aaddr),
                     x_rd.addr.eq(mul_const(row, plan.gx) + col),
                     b_rd.addr.eq(mul_const(row, plan.gb) + col)]

        # ---------------- S1: operands ----------------
        A_ASIGNED = Array([Const(int(p.a_signed)) for p in plan.passes])
        a_word = Signal(P * lb)
        m.d.comb += a_word.eq(Mux(A_ISB[t1.pass_], b_rd.data, x_rd.data))
        a_signed = A_ASIGNED[t1.pass_]
        ab_ = plan.act_bits
        lane_vals = []
        for p in range(P):
            raw = a_word[p * lb:(p + 1) * lb]
            v = Signal(signed(ab_), name=f"alane{p}")
            m.d.comb += v.eq(Mux(a_signed, raw.as_signed(), raw.as_unsigned()))
            lane_vals.append(v)
        fr1 = A_FR[t1.pass_]

        def lane_of(v):
            return v[:plan.lg_p] if plan.lg_p else 0
        d_lanes = [d_rd.data[p * db:(p + 1) * db].as_signed() for p in range(P)]
        bcast = Signal(signed(ab_))
        with m.If(t1.kind == OpKind.PW):
            m.d.comb += bcast.eq(Array(d_lanes)[Mux(fr1, lane_of(t1.t), lane_of(t1.c))])
        with m.Else():
            m.d.comb += bcast.eq(Array(lane_vals)[lane_of(t1.c)])
        A_NOUT = Array([Const(l.n_out) for l in layers])
        lane_valid = Signal(P)
        base = t1.grp << plan.lg_p
        fdw1 = Signal()
        m.d.comb += fdw1.eq(fr1 & (t1.kind == OpKind.DW))
        A_K = Array([Const(l.kernel) for l in layers])
        with m.If(fdw1):
            # lane j: output frame t + j of the tile (< T) in reach of the input (tap k - j)
            m.d.comb += lane_valid.eq(Cat(*[(t1.k >= p) & (t1.k < p + A_K[t1.layer])
                                            & (t1.t + p < T) for p in range(P)]))
        with m.Else():
            m.d.comb += lane_valid.eq(Cat(*[(base + p) < A_NOUT[t1.layer] for p in range(P)]))
        acts = []
        for p in range(P):
            a = Signal(signed(ab_), name=f"act{p}")
            m.d.comb += a.eq(Mux((t1.kind == OpKind.DW) & ~fr1, lane_vals[p], bcast))
            acts.append(a)

        # ---------------- S1b: registered operands ----------------
        # the zero test follows the register (memory data -> operand select -> zero test ->
        # PE enable, then -> gated count, were the UP5K's longest paths)
        t1b = self.op_s1b
        use1b = Signal(P)
        acts1b = [Signal(signed(ab_), name=f"act1b_{p}") for p in range(P)]
        m.d.sync += [t1b.eq(t1), use1b.eq(Mux(t1.valid & t1.mac, lane_valid, 0))]
        m.d.sync += [acts1b[p].eq(acts[p]) for p in range(P)]
        en1b, gated1b = Signal(P), Signal(P)
        m.d.comb += en1b.eq(use1b & Cat(*[acts1b[p] != 0 for p in range(P)]))
        m.d.comb += gated1b.eq(use1b & ~en1b)
        m.d.comb += [self.valid.eq(t1b.valid), self.clear.eq(t1b.clear), self.en.eq(en1b)]
        for p in range(P):
            m.d.comb += [self.w[p].eq(w_rd.data[p * wb:(p + 1) * wb].as_signed()),
                         self.a[p].eq(acts1b[p]),
                         self.bias[p].eq(Mux(t1b.kind == OpKind.DW, 0,
                                             a_rd.data[p * ab:(p + 1) * ab].as_signed()))]
        m.d.comb += [self.issued.eq(popcount(en1b)), self.gated.eq(popcount(gated1b)),
                     self.aux.eq(a_rd.data)]
        return m
