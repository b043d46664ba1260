"""Requant and write back: from the PE accumulators to the buffers (stages S2..S5).

  S2  the requant shift per lane is chosen (per channel for depthwise, from the op's
      bias/shift word; per layer otherwise)
  S3  requant shift and rounding of the emitted accumulators; head accumulators -> the
      gate unit (`head_valid`, `head_grp`; the top feeds it the accumulators)
  S4  requant clamp
  S5  depthwise results -> d memory (+ non-zero masks `dmask` / `tmask` for the sequencer),
      pointwise of a residual block -> the p hold register, residual -> residual sum requant
      -> output buffer X or B (+ mask memory); other pointwise -> output buffer
"""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .buffers import buffers_signature, d_words
from .config import Plan, signed_bits
from .requant import Requant
from .sequencer import OpKind, op_layout
from .util import mul_const


def out_bits(plan: Plan) -> int:
    """Width of the residual sum requant's result."""
    adds = [p.add for p in plan.passes if p.add]
    out_lo = min(a[1] for a in adds) if adds else 0
    out_hi = max(a[2] for a in adds) if adds else 1
    return signed_bits(min(out_lo, 0), out_hi)


class Writeback(wiring.Component):
    def __init__(self, plan: Plan):
        self.plan = plan
        P, W = plan.P, plan.mask_width
        OL = op_layout(plan)
        sig = buffers_signature(plan).members
        super().__init__({
            "op": In(OL),                               # the op at S1b
            "aux": In(P * plan.aux_bits),               # its bias/shift word
            "acc": In(data.ArrayLayout(signed(plan.acc_bits), P)),
            "head_valid": Out(1),
            "head_grp": Out(OL["grp"].shape),
            # buffer write ports, from the writer's side
            **{n: In(sig[n].signature) for n in ("d_wr", "x_wr", "xm_wr", "b_wr", "bm_wr")},
            "dmask": Out(data.ArrayLayout(W, 2)),
            "tmask": Out(data.ArrayLayout(data.ArrayLayout(W, P), 2)),
        })

    def elaborate(self, platform):
        plan = self.plan
        m = Module()
        P = plan.P
        lb, ab = plan.lane_bits, plan.aux_bits
        W = plan.mask_width
        layers = plan.layers
        fdw = any(p.frames for p in plan.passes)
        db = plan.dbits
        gd = d_words(plan)
        y_bits = out_bits(plan)
        m.submodules.requant = rq = Requant(P, plan.acc_bits, plan.shift_min, plan.shift_max,
                                            plan.rq_bits, registered=True)
        m.submodules.add_requant = addrq = Requant(P, plan.rq_bits + 1, plan.add_shift_min,
                                                   plan.add_shift_max, y_bits)
        OL = op_layout(plan)
        A_FR = Array([Const(int(p.frames)) for p in plan.passes])
        A_ISB = Array([Const(int(p.a_buf == "B")) for p in plan.passes])

        # ---------------- S2 / S3 ----------------
        t2 = Signal(OL)
        t3 = Signal(OL)
        shift2 = Signal(P * ab)
        m.d.sync += [t2.eq(self.op), t3.eq(t2)]
        with m.If(self.op.valid & self.op.clear):
            m.d.sync += shift2.eq(self.aux)
        A_SHIFT = Array([Const(l.shift, rq.shift.shape().elem_shape) for l in layers])
        # the requant's shift per lane is chosen in S2, so S3 starts from a register (S3 was
        # the UP5K's longest stage)
        shift3 = Signal.like(rq.shift)
        for p in range(P):
            m.d.sync += shift3[p].eq(Mux(t2.kind == OpKind.DW,
                                         shift2[p * ab:(p + 1) * ab].as_signed(),
                                         A_SHIFT[t2.layer]))
        A_LO = Array([Const(l.lo, signed(plan.rq_bits)) for l in layers])
        A_HI = Array([Const(l.hi, signed(plan.rq_bits)) for l in layers])
        for p in range(P):
            m.d.comb += [rq.x[p].eq(self.acc[p]), rq.shift[p].eq(shift3[p])]
        # the requant registers its shifted and rounded values: S4 clamps them (the whole
        # requant in one stage was the critical path, ~54 ns on the UP5K)
        t4 = Signal(OL)
        m.d.sync += [t4.eq(t3), t4.valid.eq(t3.valid & t3.emit)]
        m.d.comb += [rq.lo.eq(A_LO[t4.layer]), rq.hi.eq(A_HI[t4.layer])]
        t5 = Signal(OL)
        m.d.sync += t5.eq(t4)
        q5 = Signal(data.ArrayLayout(signed(plan.rq_bits), P))
        with m.If(t4.valid):
            m.d.sync += q5.eq(rq.y)
        # head accumulators -> gate unit straight from S3 (it registers one bit per lane)
        m.d.comb += [self.head_valid.eq(t3.valid & t3.emit & (t3.kind == OpKind.HEAD)),
                     self.head_grp.eq(t3.grp)]

        # ---------------- S5: write back ----------------
        # depthwise -> d memory; its non-zero masks stay in registers for the sequencer
        dmask = self.dmask
        tmask = [[self.tmask[b][j] for j in range(P if fdw else 0)] for b in range(2)]
        d_wr = self.d_wr
        d_write = Signal()
        m.d.comb += d_write.eq(t5.valid & (t5.kind == OpKind.DW))
        fr5 = A_FR[t5.pass_]
        m.d.comb += [d_wr.addr.eq(mul_const(t5.bank, gd) + Mux(fr5, t5.c, t5.grp)),
                     d_wr.data.eq(Cat(*[q5[p][:db] for p in range(P)])), d_wr.en.eq(d_write)]
        for b in range(2):
            for c in range(W):
                with m.If(d_write & ~fr5 & (t5.bank == b) & (t5.grp == c // P)):
                    m.d.sync += dmask[b][c].eq(q5[c % P] != 0)
            for j, v in enumerate(tmask[b]):
                for c in range(plan.C):
                    with m.If(d_write & fr5 & (t5.bank == b) & (t5.c == c)):
                        m.d.sync += v[c].eq(q5[j] != 0)
        # pointwise of a residual block -> p hold
        A_HASRES = Array([Const(int(p.has_res)) for p in plan.passes])
        p_hold = Signal(data.ArrayLayout(signed(plan.rq_bits), P))
        with m.If(t5.valid & (t5.kind == OpKind.PW) & A_HASRES[t5.pass_]):
            m.d.sync += p_hold.eq(q5)
        # residual sum requant
        adds = [p.add if p.add else (0, 0, 0) for p in plan.passes]
        A_ASH = Array([Const(a[0], addrq.shift.shape().elem_shape) for a in adds])
        A_ALO = Array([Const(a[1], signed(y_bits)) for a in adds])
        A_AHI = Array([Const(a[2], signed(y_bits)) for a in adds])
        for p in range(P):
            m.d.comb += [addrq.x[p].eq(p_hold[p] + q5[p]), addrq.shift[p].eq(A_ASH[t5.pass_])]
        m.d.comb += [addrq.lo.eq(A_ALO[t5.pass_]), addrq.hi.eq(A_AHI[t5.pass_])]
        # output buffer write
        ywrite = Signal()
        m.d.comb += ywrite.eq(t5.valid & ((t5.kind == OpKind.RES)
                                          | ((t5.kind == OpKind.PW) & ~A_HASRES[t5.pass_])))
        yv = [Signal(signed(max(plan.rq_bits, y_bits)), name=f"y{p}") for p in range(P)]
        for p in range(P):
            m.d.comb += yv[p].eq(Mux(t5.kind == OpKind.RES, addrq.y[p], q5[p]))
        y_word = Cat(*[yv[p][:lb] for p in range(P)])
        y_nz = Cat(*[yv[p] != 0 for p in range(P)])
        y_to_b = ~A_ISB[t5.pass_]       # pass input in X -> output to B, and back
        m.d.comb += [
            self.x_wr.addr.eq(mul_const(t5.t, plan.gx) + t5.grp), self.x_wr.data.eq(y_word),
            self.x_wr.en.eq(ywrite & ~y_to_b),
            self.xm_wr.addr.eq(t5.t), self.xm_wr.data.eq(y_nz.replicate(plan.gx)),
            self.xm_wr.en.eq(Mux(ywrite & ~y_to_b, Const(1, plan.gx) << t5.grp, 0)),
            self.b_wr.addr.eq(mul_const(t5.t, plan.gb) + t5.grp), self.b_wr.data.eq(y_word),
            self.b_wr.en.eq(ywrite & y_to_b),
            self.bm_wr.addr.eq(t5.t), self.bm_wr.data.eq(y_nz.replicate(plan.gb)),
            self.bm_wr.en.eq(Mux(ywrite & y_to_b, Const(1, plan.gb) << t5.grp, 0))]
        return m
