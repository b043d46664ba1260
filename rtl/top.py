"""SparkNetAccelerator: the top component (see docs/accelerator.md).

Ports: `features` (stream of signed 8-bit input features, frame by frame) and `result`
(stream of 32-bit record words, rtl/record.py order, `last` on the final word).

Pipeline of one op (from the Sequencer):
  S0  addresses: weight word, bias/shift word, activation buffer word, mask memory
  S1  memory data -> per-lane operands; issue enables (non-zero activation & lane in use);
      issued/gated counters
  S2  PE accumulate
  S3  requant shift and rounding of the emitted accumulators; head accumulators -> gate
      unit (acc > 0)
  S4  requant clamp
  S5  write back: depthwise results to the d memory (+ non-zero mask), pointwise to the
      p hold register, residual -> residual sum requant -> output buffer (+ mask memory),
      gate words -> FIFO -> classifier
"""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .classifier import Classifier
from .config import HwConfig, Plan, build_plan, real_macs
from .counters import PerfCounters
from .gate import GateUnit
from .loader import InputLoader
from .pe_array import PEArray
from .record import CLASSIFIER_FIELDS, COUNTER_FIELDS, LAYER_FIELDS, N_CLASSES, record_fields
from .record_tx import RESULT_LAYOUT, Direct, FromMemory, RecordSender
from .requant import Requant
from .sequencer import OpKind, Sequencer, op_layout
from .util import mul_const, popcount


def _bits_for(n: int) -> int:
    return max(1, int(n).bit_length())


class SparkNetAccelerator(wiring.Component):
    def __init__(self, model: dict, config: HwConfig | None = None):
        self.plan: Plan = build_plan(model, config)
        self.model = model
        super().__init__({
            "features": In(stream.Signature(signed(8))),
            "result": Out(stream.Signature(RESULT_LAYOUT)),
        })

    def elaborate(self, platform):
        plan = self.plan
        m = Module()
        P, T, F = plan.P, plan.T, plan.F
        lb, wb, ab = plan.lane_bits, plan.wbits, plan.aux_bits
        W = plan.mask_width
        MX, MB = plan.gx * P, plan.gb * P
        layers = plan.layers
        nl = plan.n_layers

        # ---------------- memories ----------------
        m.submodules.wmem = wmem = Memory(shape=unsigned(P * wb), depth=len(plan.weight_image),
                                          init=plan.weight_image)
        m.submodules.auxmem = auxmem = Memory(shape=unsigned(P * ab), depth=len(plan.aux_image),
                                              init=plan.aux_image, attrs=plan.rom_attrs)
        m.submodules.xbuf = xbuf = Memory(shape=unsigned(P * lb), depth=T * plan.gx,
                                          init=[0] * (T * plan.gx))
        m.submodules.bbuf = bbuf = Memory(shape=unsigned(P * lb), depth=T * plan.gb,
                                          init=[0] * (T * plan.gb))
        m.submodules.xmask = xmask = Memory(shape=unsigned(MX), depth=T, init=[0] * T)
        m.submodules.bmask = bmask = Memory(shape=unsigned(MB), depth=T, init=[0] * T)
        # d memory, per bank (frame parity): one word of P channels per lane group, or in
        # frame-parallel passes (tile parity) one word of P frames per channel
        fdw = any(p.frames for p in plan.passes)
        db = plan.dbits
        gd = max(-(-W // P), plan.C if fdw else 0)
        m.submodules.dmem = dmem = Memory(shape=unsigned(P * db), depth=2 * gd, init=[0] * (2 * gd))
        d_rd, d_wr = dmem.read_port(), dmem.write_port()
        w_rd, a_rd = wmem.read_port(), auxmem.read_port()
        x_rd, b_rd = xbuf.read_port(), bbuf.read_port()
        xm_rd, bm_rd = xmask.read_port(), bmask.read_port()
        xm_rd2, bm_rd2 = xmask.read_port(), bmask.read_port()   # frames ahead, for depthwise skipping
        x_wr, b_wr = xbuf.write_port(), bbuf.write_port()
        xm_wr, bm_wr = xmask.write_port(granularity=P), bmask.write_port(granularity=P)

        # ---------------- components ----------------
        m.submodules.seq = seq = Sequencer(plan)
        m.submodules.pes = pes = PEArray(P, wb, plan.act_bits, ab, plan.acc_bits)
        m.submodules.requant = rq = Requant(P, plan.acc_bits, plan.shift_min, plan.shift_max,
                                            plan.rq_bits, registered=True)
        out_lo = min(p.add[1] for p in plan.passes if p.add) if any(p.add for p in plan.passes) else 0
        out_hi = max(p.add[2] for p in plan.passes if p.add) if any(p.add for p in plan.passes) else 1
        from .config import signed_bits
        y_bits = signed_bits(min(out_lo, 0), out_hi)
        m.submodules.add_requant = addrq = Requant(P, plan.rq_bits + 1, plan.add_shift_min,
                                                   plan.add_shift_max, y_bits)
        m.submodules.gate = gate = GateUnit(P, F, plan.acc_bits)
        m.submodules.gate_fifo = fifo = SyncFIFO(width=F, depth=plan.config.fifo_depth)
        m.submodules.classifier = cls = Classifier(F, T, N_CLASSES, plan.cls_wbits,
                                                   plan.logit_bits, plan.cls_columns,
                                                   plan.cls_bias, rom_attrs=plan.rom_attrs)
        m.submodules.loader = loader = InputLoader(P, lb, F, T, plan.gx, MX)
        real = real_macs(plan)
        macs = max(real[lay.name] for lay in layers)
        cycle_bounds = [2 * real[lay.name] + 64 * T * lay.groups + 4096 for lay in layers]
        m.submodules.counters = ctr = PerfCounters(
            nl, (_bits_for(max(cycle_bounds)), _bits_for(macs), _bits_for(macs)),
            total_bits=_bits_for(sum(cycle_bounds)))
        m.submodules.sender = sender = RecordSender([
            FromMemory("logits", N_CLASSES), Direct("class_", 1), FromMemory("gate_counts", F),
            Direct("totals", len(COUNTER_FIELDS)),
            FromMemory("layer_counters", nl, len(LAYER_FIELDS)),
            Direct("classifier_counters", len(CLASSIFIER_FIELDS))])
        assert sender.n_words == len(record_fields(self.model))

        wiring.connect(m, wiring.flipped(self.features), loader.features)
        wiring.connect(m, sender.result, wiring.flipped(self.result))

        # ---------------- control ----------------
        run = Signal()
        start = Signal()
        m.d.comb += start.eq(loader.full & ~run & ~sender.busy)
        m.d.comb += [loader.enable.eq(~run), loader.clear.eq(start), seq.start.eq(start),
                     cls.start.eq(start), ctr.clear.eq(start), ctr.run.eq(run)]
        finish = Signal()
        m.d.comb += finish.eq(run & seq.done & cls.done)
        with m.If(start):
            m.d.sync += run.eq(1)
        with m.If(finish):
            m.d.sync += run.eq(0)
        m.d.comb += [sender.start.eq(finish), ctr.flush.eq(finish)]

        # head-frame credits: frames started but not yet in the FIFO, plus the FIFO's level;
        # the sequencer's hold is registered from next cycle's values (the same as comparing
        # the registers, without the compare in front of the sequencer's decisions)
        inflight = Signal(range(plan.config.fifo_depth + 2))
        inflight_next = Signal.like(inflight)
        level_next = Signal.like(fifo.level)
        m.d.comb += [
            inflight_next.eq(Mux(start, 0, inflight + (seq.head_frame_start & ~gate.word.valid)
                                 - (~seq.head_frame_start & gate.word.valid))),
            level_next.eq(fifo.level + (fifo.w_en & fifo.w_rdy) - (fifo.r_en & fifo.r_rdy))]
        hold = Signal()
        m.d.sync += [inflight.eq(inflight_next),
                     hold.eq(inflight_next + level_next >= plan.config.fifo_depth)]
        m.d.comb += seq.hold.eq(hold)

        # ---------------- S0: addresses ----------------
        # the sequencer's op is registered first: its next-state logic and the address
        # arithmetic were one path (the UP5K's longest); the sequencer's reports to the
        # counters are delayed to match
        OL = op_layout(plan)
        op = Signal(OL)
        m.d.sync += op.eq(seq.op)
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
        m.d.comb += [w_rd.addr.eq(waddr), a_rd.addr.eq(aaddr),
                     x_rd.addr.eq(mul_const(row, plan.gx) + col),
                     b_rd.addr.eq(mul_const(row, plan.gb) + col),
                     xm_rd.addr.eq(seq.mask_addr), bm_rd.addr.eq(seq.mask_addr)]
        m.d.comb += [seq.mask_x.eq(xm_rd.data), seq.mask_b.eq(bm_rd.data)]
        m.d.comb += [xm_rd2.addr.eq(seq.dwmask_addr), bm_rd2.addr.eq(seq.dwmask_addr),
                     seq.dwmask_x.eq(xm_rd2.data), seq.dwmask_b.eq(bm_rd2.data)]

        # ---------------- S1: operands ----------------
        A_ISB = Array([Const(int(p.a_buf == "B")) for p in plan.passes])
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
        # d memory: two banks (frame parity) of the depthwise outputs, P lanes a word; their
        # non-zero masks stay in registers for the sequencer
        dmask = [Signal(W, name=f"dmask{b}") for b in range(2)]
        m.d.comb += [seq.dmask[0].eq(dmask[0]), seq.dmask[1].eq(dmask[1])]
        tmask = [[Signal(W, name=f"tmask{b}_{j}") for j in range(P if fdw else 0)]
                 for b in range(2)]
        for b in range(2):
            for j, v in enumerate(tmask[b]):
                m.d.comb += seq.tmask[b][j].eq(v)
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
        # S1b: the selected operands and the lanes in use are registered before the PEs; the
        # zero test follows the register (memory data -> operand select -> zero test -> PE
        # enable, then -> gated count, were the UP5K's longest paths)
        t1b = Signal(OL)
        use1b = Signal(P)
        acts1b = [Signal(signed(ab_), name=f"act1b_{p}") for p in range(P)]
        m.d.sync += [t1b.eq(t1), use1b.eq(Mux(t1.valid & t1.mac, lane_valid, 0))]
        m.d.sync += [acts1b[p].eq(acts[p]) for p in range(P)]
        en1b, gated1b = Signal(P), Signal(P)
        m.d.comb += en1b.eq(use1b & Cat(*[acts1b[p] != 0 for p in range(P)]))
        m.d.comb += gated1b.eq(use1b & ~en1b)
        m.d.comb += [pes.valid.eq(t1b.valid), pes.clear.eq(t1b.clear), pes.en.eq(en1b)]
        for p in range(P):
            m.d.comb += [pes.w[p].eq(w_rd.data[p * wb:(p + 1) * wb].as_signed()),
                         pes.a[p].eq(acts1b[p]),
                         pes.bias[p].eq(Mux(t1b.kind == OpKind.DW, 0,
                                            a_rd.data[p * ab:(p + 1) * ab].as_signed()))]
        # the sequencer's reports reach the counters two cycles late (as its op reaches t1);
        # the counters delay them once more, to meet S1b's issued/gated counts of that op
        seq_gated, seq_cyc_valid = Signal.like(seq.skip_gated), Signal()
        seq_cyc_layer = Signal.like(seq.cyc_layer)
        gated_d, cyc_valid_d, cyc_layer_d = (Signal.like(seq.skip_gated), Signal(),
                                             Signal.like(seq.cyc_layer))
        m.d.sync += [gated_d.eq(seq.skip_gated), cyc_valid_d.eq(seq.cyc_valid),
                     cyc_layer_d.eq(seq.cyc_layer),
                     seq_gated.eq(gated_d), seq_cyc_valid.eq(cyc_valid_d),
                     seq_cyc_layer.eq(cyc_layer_d)]
        m.d.comb += [ctr.a_issued.eq(popcount(en1b)), ctr.a_gated.eq(popcount(gated1b)),
                     ctr.b_gated.eq(seq_gated),
                     ctr.cyc_valid.eq(seq_cyc_valid), ctr.cyc_layer.eq(seq_cyc_layer)]
        shift1 = Signal(P * ab)
        m.d.comb += shift1.eq(a_rd.data)

        # ---------------- S2 / S3 ----------------
        t2 = Signal(OL)
        t3 = Signal(OL)
        shift2 = Signal(P * ab)
        m.d.sync += [t2.eq(t1b), t3.eq(t2)]
        with m.If(t1b.valid & t1b.clear):
            m.d.sync += shift2.eq(shift1)
        A_SHIFT = Array([Const(l.shift, rq.shift.shape().elem_shape) for l in layers])
        # the requant's shift per lane (per channel for depthwise, per layer otherwise) is
        # chosen in S2, so S3 starts from a register (S3 was the UP5K's longest stage)
        shift3 = Signal.like(rq.shift)
        for p in range(P):
            m.d.sync += shift3[p].eq(Mux(t2.kind == OpKind.DW,
                                         shift2[p * ab:(p + 1) * ab].as_signed(),
                                         A_SHIFT[t2.layer]))
        A_LO = Array([Const(l.lo, signed(plan.rq_bits)) for l in layers])
        A_HI = Array([Const(l.hi, signed(plan.rq_bits)) for l in layers])
        for p in range(P):
            m.d.comb += [rq.x[p].eq(pes.acc[p]), rq.shift[p].eq(shift3[p])]
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
        m.d.comb += [gate.valid.eq(t3.valid & t3.emit & (t3.kind == OpKind.HEAD)),
                     gate.grp.eq(t3.grp)]
        for p in range(P):
            m.d.comb += gate.acc[p].eq(pes.acc[p])

        # ---------------- S5: write back ----------------
        # depthwise -> d memory and masks
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
        # loader and pass outputs share X's write ports (never at the same time)
        with m.If(run):
            m.d.comb += [
                x_wr.addr.eq(mul_const(t5.t, plan.gx) + t5.grp), x_wr.data.eq(y_word),
                x_wr.en.eq(ywrite & ~y_to_b),
                xm_wr.addr.eq(t5.t), xm_wr.data.eq(y_nz.replicate(plan.gx)),
                xm_wr.en.eq(Mux(ywrite & ~y_to_b, Const(1, plan.gx) << t5.grp, 0)),
            ]
        with m.Else():
            m.d.comb += [x_wr.addr.eq(loader.wr_addr), x_wr.data.eq(loader.wr_data),
                         x_wr.en.eq(loader.wr_en), xm_wr.addr.eq(loader.mask_addr),
                         xm_wr.data.eq(loader.mask_data), xm_wr.en.eq(loader.mask_en)]
        m.d.comb += [b_wr.addr.eq(mul_const(t5.t, plan.gb) + t5.grp), b_wr.data.eq(y_word),
                     b_wr.en.eq(ywrite & y_to_b),
                     bm_wr.addr.eq(t5.t), bm_wr.data.eq(y_nz.replicate(plan.gb)),
                     bm_wr.en.eq(Mux(ywrite & y_to_b, Const(1, plan.gb) << t5.grp, 0))]
        # gate unit -> FIFO -> classifier
        m.d.comb += [fifo.w_en.eq(gate.word.valid), fifo.w_data.eq(gate.word.payload),
                     cls.gates.valid.eq(fifo.r_rdy), cls.gates.payload.eq(fifo.r_data),
                     fifo.r_en.eq(cls.gates.ready)]
        m.d.comb += gate.word.ready.eq(1)

        # ---------------- the record ----------------
        direct = {
            "class_": [cls.cls],
            "totals": [ctr.cycles, cls.frames_skipped],
            "classifier_counters": [cls.busy_cycles],
        }
        for name, values in direct.items():
            port = getattr(sender, name)
            for i, v in enumerate(values):
                m.d.comb += port[i].eq(v.as_signed() if v.shape().signed else v)
        m.d.comb += [cls.logit_addr.eq(sender.addr), sender.logits[0].eq(cls.logit_data),
                     cls.count_addr.eq(sender.addr), sender.gate_counts[0].eq(cls.count_data),
                     ctr.rd_layer.eq(sender.addr), sender.layer_counters.eq(ctr.rd_data)]
        return m
