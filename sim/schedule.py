"""Exact schedule model of the accelerator: the hardware's counters of one inference, predicted.

    from sparknet_hw.sim.schedule import predict, cycle_budget, compare
    pred = predict(model, HwConfig(cols=4), clip)     # clip: int [32, T]
    compare(pred, record)                              # [] when every counter agrees

`predict` returns, for one inference, what `rtl/record.py decode_record` reads from the
hardware: every layer's `cycles`, `issued` and `gated` counters, the total `cycles`,
`frames_skipped` and the classifier's busy cycles -- exactly, not as an estimate (FINN's
per-layer cycle estimates are the idea, but here every cycle is accounted for).

What decides the numbers, and how each is modelled:

* issued / gated MACs follow from the data alone. A lane issues a product when its
  activation operand is non-zero (`golden.nonzero_products`); every other real product (the
  'same'-padding taps excluded, `config.real_macs`) is counted as gated, whether its zero
  operand reached the PEs or the sequencer skipped it. So gated = real - issued.
* The classifier adds one column per open gate bit, so its busy cycles are the number of
  open gates, and a frame whose 32 gates are all shut is a skipped frame.
* Cycles come from the sequencer's op walk (rtl/sequencer.py), one op per cycle, emulated
  here segment by segment rather than cycle by cycle: a depthwise group / channel costs
  max(1, ops it visits), a 1x1 segment max(1, set mask bits) (an empty segment still issues
  the op that carries the bias). The walk has two data-dependent waits besides:
  - Phase.IDLE before a frame's 1x1 work: the frame's depthwise results are readable D_LAT
    cycles after the last depthwise op into their d bank, and the segment walk sees their
    mask a cycle later (D_WAIT, the `since` counters);
  - the head pass's `hold`: a head frame starts only while fewer than fifo_depth frames are
    started but not yet taken by the classifier, so the classifier's pace (one cycle per
    open gate, rtl/classifier.py) can stall the head. This couples the head pass, the gate
    unit, the FIFO and the classifier, which are therefore emulated together frame by frame.
    A classifier with fewer adders than classes (rtl/classifier_serial.py) takes
    12 / adders cycles per open gate.
  With single-port activation buffers, each block pass ends with Phase.DRAIN (DRAIN_CYCLES,
  attributed to its pointwise).
  The total ends when the classifier has scanned its logits (the sequencer is always done
  earlier), and every sequencer cycle is attributed to the layer the sequencer reports for
  it (Phase.PRE and Phase.DW to the depthwise, Phase.IDLE to the pointwise or head, stalls
  to the head).

The masks the sequencer skips on are the non-zero patterns of the golden model's tensors
(`golden.run`), taken per stored P-lane word where the hardware tests words.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sparknet_hw.quant import golden
from sparknet_hw.quant.export_types import Block, ExportLike, as_export
from sparknet_hw.rtl.config import HwConfig, Pass, Plan, build_plan, real_macs
from sparknet_hw.rtl.record import LAYER_FIELDS, N_CLASSES, layer_names, record_fields
from sparknet_hw.rtl.argmax import SCAN_LATENCY
from sparknet_hw.rtl.seg_walk import START_LAG
from sparknet_hw.rtl.sequencer import D_WAIT, DRAIN_CYCLES

# A frame's 1x1 work may start this many cycles after the last depthwise op into its d bank:
# the `since` counter restarts at 0 the cycle after that op, reads D_WAIT D_WAIT cycles later,
# and the sequencer enters Phase.ONE in the cycle after it sees that.
D_READY = D_WAIT + 2
# From the head's last op of a frame (sequencer, cycle c) to the gate word's valid pulse: the
# op register, S1 (t1), S1b, S2, S3 (gate unit input), then the gate unit's register.
GATE_WORD_DELAY = 6
# The FIFO shows a written word (r_rdy = level != 0) the cycle after the write.
FIFO_DELAY = 1
# From the cycle the classifier sees its last column added (scan condition) to `finish`:
# 12 logits read one a cycle, each compared when it arrives (rtl/argmax.py), then `done` is
# registered.
SCAN_CYCLES = N_CLASSES + SCAN_LATENCY + 2
# The sequencer's first running cycle (cycle 0 is the `start` pulse; the total cycle counter
# counts from the cycle after it up to and including `finish`).
FIRST_CYCLE = 1
# Head pass entry: Phase.IDLE for one cycle, or two without depthwise skipping, where the mask
# read address is not steered ahead and the first frame's mask must be waited for (`fresh`).
HEAD_ENTRY_IDLE = {True: 1, False: 2}
# Slack for cycle_budget: the benches need about one cycle per input word (more with the
# cocotb driver's random gaps) and a few per record word (random ready backpressure), plus a
# safety factor on the compute.
BUDGET_CYCLES_PER_INPUT_WORD = 2
BUDGET_CYCLES_PER_RECORD_WORD = 4
BUDGET_MARGIN = 0.1
BUDGET_SLACK = 1000


# ------------------------------------------------------------------ activity (golden model)

@dataclass
class BlockActivity:
    """Non-zero patterns of one block pass's tensors, as the sequencer sees them."""
    a_nz: np.ndarray       # bool [c_in, T]: pass input (buffer X or B)
    d_nz: np.ndarray       # bool [c_in, T]: depthwise output (d memory)
    word_nz: np.ndarray    # bool [gin, T]: P-lane words of the input with a non-zero lane


def _pad_value(block: Block) -> int:
    """What a padding lane (channel >= C of a P-lane word) of a block's output holds: its
    weights and bias are zero, so the accumulator is 0, then requantized and clamped."""
    pw = block.pw
    zero = np.zeros(1, dtype=np.int64)
    p = golden.requant(zero, pw.shift, pw.lo, pw.hi)
    if not block.has_res:
        return int(p[0])
    res, add = block.res, block.add
    r = golden.requant(zero, res.shift, res.lo, res.hi)
    return int(golden.requant(p + r, add.shift, add.lo, add.hi)[0])


def _word_nz(nz: np.ndarray, P: int, pad_nz: bool) -> np.ndarray:
    """Per P-lane word (lane group) and frame: any lane non-zero. Padding lanes of a partial
    group hold the producing layer's value for a zero accumulator."""
    c, T = nz.shape
    groups = -(-c // P)
    padded = np.full((groups * P, T), pad_nz, dtype=bool)
    padded[:c] = nz
    return padded.reshape(groups, P, T).any(axis=1)


def activity(model: ExportLike, plan: Plan,
             clip: np.ndarray) -> tuple[dict, list[BlockActivity]]:
    """Golden run of the clip and the per-pass non-zero patterns."""
    model = as_export(model)
    out = golden.run(model, clip)
    blocks = []
    a, pad_nz = out["input"], False          # the 32 features fill their words (F % P == 0)
    for i, block in enumerate(model.blocks, start=1):
        a_nz = a != 0
        blocks.append(BlockActivity(a_nz, out[f"block{i}.dw"] != 0,
                                    _word_nz(a_nz, plan.P, pad_nz)))
        a, pad_nz = out[f"block{i}.out"], _pad_value(block) != 0
    return out, blocks


# ------------------------------------------------------------------ the op walk

def _skips_depthwise(plan: Plan) -> bool:
    return plan.config.zero_skip and plan.config.skip_depthwise


def _dw_frame(p: Pass, plan: Plan, f: int) -> int:
    """First frame of the depthwise step that produced frame f (and so its d bank)."""
    return f - f % plan.P if p.frames else f


def _dw_ops(p: Pass, plan: Plan, act: BlockActivity, s: int) -> int:
    """Ops of the depthwise step s (cycles in Phase.DW)."""
    T, h = plan.T, p.half
    if p.frames:
        # per channel, one op per non-zero input of the frames s-h .. s+P-1+h
        lo, hi = max(0, s - h), min(T - 1, s + plan.P - 1 + h)
        return int(np.maximum(1, act.a_nz[:, lo:hi + 1].sum(axis=1)).sum())
    lo, hi = max(0, s - h), min(T - 1, s + h)       # the valid taps' input frames
    if _skips_depthwise(plan):
        # per lane group, the taps whose P-lane input word is non-zero
        return int(np.maximum(1, act.word_nz[:, lo:hi + 1].sum(axis=1)).sum())
    return p.gin * (hi - lo + 1)


def _segment(plan: Plan, nz: np.ndarray) -> int:
    """Cycles of a 1x1 segment over a frame's input channels nz (bool [c])."""
    if not plan.config.zero_skip:
        return len(nz)
    return max(1, int(nz.sum()))


def _block_pass(plan: Plan, p: Pass, act: BlockActivity, start: int,
                cycles: dict[str, int], waits: list[int]) -> int:
    """Walk one block pass from its first cycle; add its cycles per layer and its Phase.IDLE
    waits for d (to `waits`); return the cycle after its last op (where the next pass
    starts)."""
    T = plan.T
    names = {k: plan.layers[i].name for k, i in (("dw", p.l_dw), ("pw", p.l_pw),
                                                    ("res", p.l_res))}
    now = start
    if _skips_depthwise(plan):
        # Phase.PRE: the skip windows load the frames the first step looks ahead
        pre = p.half + (plan.P if p.frames else 1)
        cycles[names["dw"]] += pre
        now += pre
    dw_last: dict[int, int] = {}       # depthwise step -> cycle of its last op (last d emit)
    for s in range(T + 1):
        if s < T and (not p.frames or s % plan.P == 0):
            n = _dw_ops(p, plan, act, s)
            cycles[names["dw"]] += n
            now += n
            dw_last[s] = now - 1
        else:
            n = 0
        if s == 0:
            continue                   # the 1x1 work lags the depthwise by one frame
        f = s - 1
        # wait (Phase.IDLE) for the d bank of frame f. A PW segment starts in a step's second
        # cycle at the earliest (START_LAG): after a one-op depthwise, or where the step
        # begins in Phase.IDLE (step T always; a frame-parallel step inside a tile whose d
        # is not ready when it begins), the walk spends one more cycle in Phase.IDLE
        ready = dw_last[_dw_frame(p, plan, f)] + D_READY
        if s == T:
            one = max(now + 1 + START_LAG, ready)
        elif n == 1:
            one = max(now + START_LAG, ready)
        elif n == 0 and ready > now:
            one = max(now + 1 + START_LAG, ready)
        else:
            one = max(now, ready)
        cycles[names["pw"]] += one - now
        waits.append(one - now)
        now = one
        pw = _segment(plan, act.d_nz[:, f])
        res = _segment(plan, act.a_nz[:, f]) if p.has_res else 0
        cycles[names["pw"]] += p.n_og * pw
        if p.has_res:
            cycles[names["res"]] += p.n_og * res
        now += p.n_og * (pw + res)
    if plan.config.activation_ram == "spram":
        # Phase.DRAIN: the pass's last writes leave the pipeline before the next pass reads
        cycles[names["pw"]] += DRAIN_CYCLES
        now += DRAIN_CYCLES
    return now


@dataclass
class HeadTiming:
    end: int                  # cycle after the head's last op
    stall: int                # cycles the head waited for classifier credit (hold)
    reads: list[int]          # cycle the classifier took each frame's gate word


def _head_and_classifier(plan: Plan, y_nz: np.ndarray, gate: np.ndarray, start: int,
                         cycles: dict[str, int]) -> tuple[HeadTiming, int]:
    """The head pass, frame by frame, with the gate FIFO and the classifier that give it
    credit. Returns the head's timing and the cycle of `finish` (the classifier's `done`)."""
    T, D = plan.T, plan.config.fifo_depth
    steps = N_CLASSES // plan.config.classifier_adders      # cycles per open gate
    now = start + HEAD_ENTRY_IDLE[_skips_depthwise(plan)]
    n_og = plan.passes[-1].n_og
    opened = gate.sum(axis=0)                  # open gates (column adds) per frame
    reads: list[int] = []
    stall = 0
    for t in range(T):
        # hold: frames started minus frames read by the classifier must stay below D
        first = max(now, reads[t - D] + 1) if t >= D else now
        stall += first - now
        now = first + n_og * _segment(plan, y_nz[:, t])
        word = now - 1 + GATE_WORD_DELAY
        # the classifier takes a word once it is in the FIFO and the previous word's columns
        # are walked (the last column add overlaps the next handshake)
        read = word + FIFO_DELAY
        if t:
            read = max(read, reads[-1] + max(1, steps * int(opened[t - 1])))
        reads.append(read)
    cycles["head"] += now - start
    # scan once no column add is in flight: the last add's cycle and the one after are busy
    last_add = max((r + steps * int(n) for r, n in zip(reads, opened) if n), default=-1)
    scan = max(reads[-1] + 1, last_add + 2)
    return HeadTiming(now, stall, reads), scan + SCAN_CYCLES


# ------------------------------------------------------------------ the prediction

def predict(model: ExportLike, config: HwConfig | None, clip: np.ndarray) -> dict:
    """The hardware counters of one inference of `clip` (int [32, T]).

    Returns {"cycles", "frames_skipped", "macs_issued", "macs_gated",
             "layers": {name: {"cycles", "issued", "gated"}} for every name in
             rtl.record.layer_names(model) (the classifier's issued/gated are column adds),
             "timeline": {...}} -- the same keys as decode_record's counters, plus a timeline
    of where the cycles went (not hardware counters: for reports and `cycle_budget`)."""
    model = as_export(model)
    plan = build_plan(model, config or HwConfig())
    clip = np.asarray(clip)
    out, acts = activity(model, plan, clip)
    names = layer_names(model)
    cycles = {name: 0 for name in names}

    now = FIRST_CYCLE
    passes, waits = [], []
    for p, act in zip(plan.passes[:-1], acts):
        end = _block_pass(plan, p, act, now, cycles, waits)
        passes.append((now, end))
        now = end
    y_nz = out[f"block{len(acts)}.out"] != 0
    head, finish = _head_and_classifier(plan, y_nz, out["gate"], now, cycles)
    passes.append((now, head.end))

    real = real_macs(plan)
    issued = golden.nonzero_products(model, out)
    opened = int(out["gate"].sum())
    layers = {name: {"cycles": cycles[name], "issued": issued[name],
                     "gated": real[name] - issued[name]} for name in names[:-1]}
    steps = N_CLASSES // plan.config.classifier_adders
    layers["classifier"] = {"cycles": steps * opened, "issued": N_CLASSES * opened,
                            "gated": real["classifier"] - N_CLASSES * opened}
    return {
        "cycles": finish,
        "frames_skipped": int((~out["gate"].any(axis=0)).sum()),
        "macs_issued": sum(issued[name] for name in names[:-1]),
        "macs_gated": sum(real[name] - issued[name] for name in names[:-1]),
        "layers": layers,
        "timeline": {
            "passes": passes,                        # [first cycle, cycle after last op)
            "sequencer_cycles": head.end - FIRST_CYCLE,
            "idle_cycles": sum(waits),               # block passes' Phase.IDLE (waits for d)
            "head_stall_cycles": head.stall,
            "classifier_reads": head.reads,
            "input_words": plan.F * plan.T,
            "record_words": len(record_fields(model)),
        },
    }


def predict_dense(model: ExportLike, config: HwConfig | None, clip: np.ndarray) -> dict:
    """The same clip without zero skipping (zeros only gated): the dense baseline."""
    return predict(model, (config or HwConfig()).with_skip("off"), clip)


def cycle_budget(prediction: dict | Sequence[dict]) -> int:
    """A safe simulation timeout in cycles for the inferences predicted (one prediction or a
    list): the predicted compute plus a margin, the input loading and the record transfer."""
    preds = [prediction] if isinstance(prediction, dict) else list(prediction)
    total = 0
    for p in preds:
        tl = p["timeline"]
        total += (int(p["cycles"] * (1 + BUDGET_MARGIN))
                  + BUDGET_CYCLES_PER_INPUT_WORD * tl["input_words"]
                  + BUDGET_CYCLES_PER_RECORD_WORD * tl["record_words"])
    return total + BUDGET_SLACK


# ------------------------------------------------------------------ comparison

def counters(record: dict) -> dict:
    """The fields a prediction and a decoded record share, flattened to 'a.b.c' keys."""
    flat = {"cycles": record["cycles"], "frames_skipped": record["frames_skipped"]}
    for name, fields in record["layers"].items():
        for what in LAYER_FIELDS:
            flat[f"layers.{name}.{what}"] = fields[what]
    return flat


def compare(prediction: dict, record: dict) -> list[str]:
    """Every counter where the prediction and the hardware record differ, by name."""
    want, got = counters(prediction), counters(record)
    return [f"{key}: predicted {want.get(key)}, hardware {got.get(key)}"
            for key in sorted(set(want) | set(got), key=list({**want, **got}).index)
            if want.get(key) != got.get(key)]
