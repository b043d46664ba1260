"""SparkNetAccelerator: the top component (see docs/accelerator.md).

Ports: `features` (stream of signed 8-bit input features, frame by frame) and `result`
(stream of 32-bit record words, rtl/record.py order, `last` on the final word).

The top wires the components; the pipeline of one op (from the Sequencer) runs through
  OperandFetch (rtl/fetch.py)       S0 addresses, S1 operand select, S1b registered operands,
                                    zero test and issue enables
  PEArray (rtl/pe_array.py)         S2 accumulate
  Writeback (rtl/writeback.py)      S3 requant shift and rounding (head accumulators -> the
                                    GateUnit), S4 clamp, S5 write back to the d memory and
                                    the activation buffers (rtl/buffers.py)
and the gate words go through a FIFO to the Classifier. The top also holds the run control,
the head-frame credits behind the sequencer's `hold`, and the counters' view of the op
stream.
"""
from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from .buffers import add_memories
from .classifier import Classifier
from .classifier_serial import SerialClassifier
from .config import HwConfig, Plan, build_plan, real_macs
from .counters import PerfCounters
from .fetch import OperandFetch
from .gate import GateUnit
from .loader import InputLoader
from .pe_array import PEArray
from .record import CLASSIFIER_FIELDS, COUNTER_FIELDS, LAYER_FIELDS, N_CLASSES, record_fields
from .record_tx import RESULT_LAYOUT, Direct, FromMemory, RecordSender
from .sequencer import Sequencer
from .writeback import Writeback


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
        layers = plan.layers
        nl = plan.n_layers

        bufs = SimpleNamespace(**add_memories(m, plan))
        m.submodules.seq = seq = Sequencer(plan)
        m.submodules.fetch = fetch = OperandFetch(plan)
        m.submodules.pes = pes = PEArray(P, plan.wbits, plan.act_bits, plan.aux_bits,
                                         plan.acc_bits, accumulator=plan.config.accumulators)
        m.submodules.writeback = wback = Writeback(plan)
        m.submodules.gate = gate = GateUnit(P, F, plan.acc_bits)
        m.submodules.gate_fifo = fifo = SyncFIFO(width=F, depth=plan.config.fifo_depth)
        adders = plan.config.classifier_adders
        if adders == N_CLASSES:
            cls = Classifier(F, T, N_CLASSES, plan.cls_wbits, plan.logit_bits,
                             plan.cls_columns, plan.cls_bias, rom_attrs=plan.rom_attrs)
        else:
            cls = SerialClassifier(F, T, N_CLASSES, plan.cls_wbits, plan.logit_bits,
                                   plan.cls_columns, plan.cls_bias, adders,
                                   rom_attrs=plan.rom_attrs)
        m.submodules.classifier = cls
        m.submodules.loader = loader = InputLoader(P, plan.lane_bits, F, T, plan.gx, plan.gx * P)
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
        # block RAMs read only from the start of an inference until its record is out: an
        # enabled read port reads on every cycle, and between inferences nobody needs the data
        # (docs/power.md: the idle device's largest share after the clock tree)
        awake = Signal()
        m.d.comb += awake.eq(start | run | sender.busy)
        m.d.comb += [fetch.rd_en.eq(awake), cls.rd_en.eq(awake), ctr.rd_en.eq(awake)]
        m.d.comb += [port.en.eq(awake)
                     for port in (bufs.xm_rd, bufs.bm_rd, bufs.xm_rd2, bufs.bm_rd2)]

        # a read and a write of a single-port activation buffer in one cycle (rtl/spram.py):
        # sticky from the start of an inference; the simulations check it stays low
        buffer_collision = Signal()
        with m.If(start):
            m.d.sync += buffer_collision.eq(0)
        with m.Elif(bufs.collision):
            m.d.sync += buffer_collision.eq(1)

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

        # ---------------- the op pipeline ----------------
        m.d.comb += fetch.op.eq(seq.op)
        for port in ("x_rd", "b_rd", "d_rd"):
            wiring.connect(m, getattr(fetch, port), getattr(bufs, port))
        for name in ("valid", "clear", "w", "a", "en", "bias"):
            m.d.comb += getattr(pes, name).eq(getattr(fetch, name))
        m.d.comb += [wback.op.eq(fetch.op_s1b), wback.aux.eq(fetch.aux), wback.acc.eq(pes.acc)]
        m.d.comb += [seq.dmask.eq(wback.dmask), seq.tmask.eq(wback.tmask)]
        for port in ("d_wr", "b_wr", "bm_wr"):
            wiring.connect(m, getattr(wback, port), getattr(bufs, port))
        # the loader and the pass outputs share X's write ports (never at the same time)
        for wr, port in ((bufs.x_wr, wback.x_wr), (bufs.xm_wr, wback.xm_wr)):
            with m.If(run):
                m.d.comb += [wr.addr.eq(port.addr), wr.data.eq(port.data), wr.en.eq(port.en)]
        with m.If(~run):
            m.d.comb += [bufs.x_wr.addr.eq(loader.wr_addr), bufs.x_wr.data.eq(loader.wr_data),
                         bufs.x_wr.en.eq(loader.wr_en), bufs.xm_wr.addr.eq(loader.mask_addr),
                         bufs.xm_wr.data.eq(loader.mask_data), bufs.xm_wr.en.eq(loader.mask_en)]
        # the sequencer's mask reads: the 1x1 segments' frame, and the depthwise skip
        # window's frames ahead
        m.d.comb += [bufs.xm_rd.addr.eq(seq.mask_addr), bufs.bm_rd.addr.eq(seq.mask_addr),
                     seq.mask_x.eq(bufs.xm_rd.data), seq.mask_b.eq(bufs.bm_rd.data),
                     bufs.xm_rd2.addr.eq(seq.dwmask_addr), bufs.bm_rd2.addr.eq(seq.dwmask_addr),
                     seq.dwmask_x.eq(bufs.xm_rd2.data), seq.dwmask_b.eq(bufs.bm_rd2.data)]
        # the sequencer's reports reach the counters two cycles late (as its op reaches the
        # fetch's t1); the counters delay them once more, to meet S1b's issued/gated counts
        # of that op
        seq_gated, seq_cyc_valid = Signal.like(seq.skip_gated), Signal()
        seq_cyc_layer = Signal.like(seq.cyc_layer)
        gated_d, cyc_valid_d, cyc_layer_d = (Signal.like(seq.skip_gated), Signal(),
                                             Signal.like(seq.cyc_layer))
        m.d.sync += [gated_d.eq(seq.skip_gated), cyc_valid_d.eq(seq.cyc_valid),
                     cyc_layer_d.eq(seq.cyc_layer),
                     seq_gated.eq(gated_d), seq_cyc_valid.eq(cyc_valid_d),
                     seq_cyc_layer.eq(cyc_layer_d)]
        m.d.comb += [ctr.a_issued.eq(fetch.issued), ctr.a_gated.eq(fetch.gated),
                     ctr.b_gated.eq(seq_gated),
                     ctr.cyc_valid.eq(seq_cyc_valid), ctr.cyc_layer.eq(seq_cyc_layer)]
        # head accumulators -> gate unit -> FIFO -> classifier
        m.d.comb += [gate.valid.eq(wback.head_valid), gate.grp.eq(wback.head_grp), gate.acc.eq(pes.acc)]
        m.d.comb += [fifo.w_en.eq(gate.word.valid), fifo.w_data.eq(gate.word.payload),
                     cls.gates.valid.eq(fifo.r_rdy), cls.gates.payload.eq(fifo.r_data),
                     fifo.r_en.eq(cls.gates.ready)]
        m.d.comb += gate.word.ready.eq(1)

        # ---------------- the record ----------------
        direct = {
            "class_": [cls.cls],
            "totals": [ctr.cycles, cls.frames_skipped],
            "classifier_counters": [cls.busy_cycles, Const(adders, range(N_CLASSES + 1))],
        }
        for name, values in direct.items():
            port = getattr(sender, name)
            for i, v in enumerate(values):
                m.d.comb += port[i].eq(v.as_signed() if v.shape().signed else v)
        m.d.comb += [cls.logit_addr.eq(sender.addr), sender.logits[0].eq(cls.logit_data),
                     cls.count_addr.eq(sender.addr), sender.gate_counts[0].eq(cls.count_data),
                     ctr.rd_layer.eq(sender.addr), sender.layer_counters.eq(ctr.rd_data)]
        return m
