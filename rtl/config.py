"""Hardware configuration and the static plan derived from an export.

`HwConfig` is what a user chooses (PE array size, zero skipping). `build_plan(export, config)`
(an `Export`, or an export dict converted once) checks that the export fits the hardware and
computes everything the generator needs: the layer table in record order, the pass schedule,
bit widths and the memory images (weights, biases/shifts, classifier columns). Nothing about a
particular C is hard-coded: every number comes from the export.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from sparknet_hw.errors import UserError
from sparknet_hw.quant.accumulators import acc_bits as _acc_bits
from sparknet_hw.quant.export_types import Export, ExportLike, as_export

from .pe_array import ACCUMULATORS
from .record import N_CLASSES, N_GATES, layer_names

MAX_OPERAND_BITS = 8       # SB_MAC16 takes 16-bit operands; the contract uses <= 8-bit weights
MAX_ACC_BITS = 40


class HwConfigError(UserError):
    pass


@dataclass(frozen=True)
class HwConfig:
    """PE array of rows x cols processing elements (lanes of the broadcast array).

    The dataflow treats the array as rows*cols lanes: a 1x1 layer broadcasts one activation to
    all lanes (each lane a different output channel); a depthwise layer gives each lane its own
    channel. rows*cols must be a power of two between 1 and 16.
    """
    rows: int = 1
    cols: int = 8
    zero_skip: bool = True      # False: iterate over every channel (zeros only gated)
    # with zero_skip, also skip the depthwise taps whose P-lane word is all zero; False keeps
    # the 1x1 skipping only (most of the saved cycles, a fraction of the logic)
    skip_depthwise: bool = True
    fifo_depth: int = 4         # gate-word FIFO between head and classifier
    # the read-only tables (classifier columns, biases/shifts): "auto" lets synthesis choose
    # (Yosys builds them from LUTs on the iCE40), "block" asks for block RAM, which saves
    # ~550 LUT4s and costs ~8 EBRs at C=8
    rom_style: str = "auto"
    # with depthwise skipping, blocks 2..4 run their depthwise frame-parallel: the lanes are
    # P consecutive output frames of one channel and each op broadcasts one non-zero input
    # activation, so every zero input is skipped, not just all-zero P-lane words
    dw_frames: bool = True
    # the ping-pong activation buffers X and B: "block" RAM, or "spram" (single-port RAMs,
    # rtl/spram.py: the iCE40 UltraPlus SB_SPRAM256KA), which frees the block RAMs they took
    activation_ram: str = "block"
    # classes the classifier adds per cycle: 12 (all, one cycle per open gate, twelve adders
    # and their sums in flip-flops) or a divisor leaving >= 2 steps (rtl/classifier_serial.py:
    # 12 / adders cycles per open gate, the sums in block RAM)
    classifier_adders: int = 12
    # where each lane accumulates: "fabric" (an adder in logic behind the multiplier) or
    # "dsp" (rtl/mac16.py: two SB_MAC16 per lane, their accumulators taking turns)
    accumulators: str = "fabric"

    def __post_init__(self):
        _check(self.rom_style in ROM_STYLES,
               f"rom_style '{self.rom_style}': choose one of {', '.join(ROM_STYLES)}")
        _check(self.classifier_adders in CLASSIFIER_ADDERS,
               f"classifier_adders {self.classifier_adders}: choose one of "
               f"{', '.join(map(str, CLASSIFIER_ADDERS))}")
        _check(self.accumulators in ACCUMULATORS,
               f"accumulators '{self.accumulators}': choose one of {', '.join(ACCUMULATORS)}")
        _check(self.activation_ram in ACTIVATION_RAMS,
               f"activation_ram '{self.activation_ram}': choose one of "
               f"{', '.join(ACTIVATION_RAMS)}")

    @property
    def pes(self) -> int:
        return self.rows * self.cols

    @property
    def skip_mode(self) -> str:
        """'all', '1x1' (pointwise, residual and head only) or 'off'."""
        return ("all" if self.skip_depthwise else "1x1") if self.zero_skip else "off"

    @property
    def depthwise(self) -> str:
        """Dataflow of the depthwise of blocks 2..4: 'frames' (lanes are consecutive frames of
        one channel, every zero input skipped) or 'channels' (lanes are channels)."""
        return ("frames" if self.zero_skip and self.skip_depthwise and self.dw_frames
                and self.pes >= 2 else "channels")

    def with_skip(self, mode: str) -> "HwConfig":
        _check(mode in SKIP_MODES,
               f"zero skipping '{mode}': choose one of {', '.join(SKIP_MODES)}")
        return replace(self, zero_skip=mode != "off", skip_depthwise=mode == "all")


SKIP_MODES = ("all", "1x1", "off")
ROM_STYLES = ("auto", "block")
ACTIVATION_RAMS = ("block", "spram")
CLASSIFIER_ADDERS = (1, 2, 3, 4, 6, 12)     # divisors of the 12 classes


def signed_bits(lo: int, hi: int) -> int:
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


def unsigned_bits(hi: int) -> int:
    return max(1, int(hi).bit_length())


def tensor_bits(lo: int, hi: int) -> tuple[int, bool]:
    """(bits, signed) of a stored tensor with values in [lo, hi]."""
    if lo < 0:
        return signed_bits(lo, hi), True
    return unsigned_bits(hi), False


def pack(values, bits: int) -> int:
    word = 0
    mask = (1 << bits) - 1
    for p, v in enumerate(values):
        word |= (int(v) & mask) << (p * bits)
    return word


@dataclass
class Layer:
    index: int
    name: str
    kind: str                 # "dw", "pw", "res", "head"
    block: int | None
    c_in: int
    n_out: int                # channels over the lanes: dw -> c_in, 1x1 -> c_out
    groups: int               # lane groups of n_out
    kernel: int = 1
    wbase: int = 0
    abase: int = 0
    shift: int = 0            # 1x1 layers (dw: per channel, in the aux memory)
    lo: int = 0
    hi: int = 0
    dense_per_frame: int = 0  # filled for reporting only
    frames: bool = False      # frame-parallel depthwise: weights per (channel, window offset)


@dataclass
class Pass:
    index: int
    is_head: bool
    kernel: int
    half: int
    c_in: int
    gin: int                  # depthwise lane groups (of c_in)
    n_og: int                 # output lane groups
    has_res: bool
    l_dw: int
    l_pw: int                 # head pass: head layer
    l_res: int
    a_buf: str                # "X" or "B": which buffer holds the pass input
    a_signed: bool
    add: tuple[int, int, int] | None   # (shift, lo, hi)
    frames: bool = False      # frame-parallel depthwise (see HwConfig.dw_frames)
    lanes: int = 1            # P

    @property
    def window(self) -> int:
        """Input frames a depthwise step reads: the kernel, plus P - 1 for a frame tile."""
        return self.kernel + (self.lanes - 1 if self.frames else 0)


@dataclass
class Plan:
    model: Export
    config: HwConfig
    P: int
    lg_p: int
    T: int
    F: int
    C: int
    wbits: int
    lane_bits: int            # activation buffer lane width
    dbits: int                # depthwise output register width (signed)
    act_bits: int             # signed multiplier operand width
    acc_bits: int
    rq_bits: int              # requantized value width (signed)
    aux_bits: int             # bias / shift lane width (signed)
    shift_min: int
    shift_max: int
    add_shift_min: int
    add_shift_max: int
    gx: int                   # lane groups per frame in buffer X (features, y2, y4)
    gb: int                   # lane groups per frame in buffer B (y1, y3)
    mask_width: int
    layers: list[Layer]
    passes: list[Pass]
    weight_image: list[int]
    aux_image: list[int]
    cls_columns: list[int]    # per gate f: 12 weights packed
    cls_bias: list[int]
    cls_wbits: int
    logit_bits: int
    record_names: list[str] = field(default_factory=list)

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def rom_attrs(self) -> dict:
        """Synthesis attributes of the read-only tables' memories."""
        return {"ram_style": "block"} if self.config.rom_style == "block" else {}


def _check(cond, msg):
    if not cond:
        raise HwConfigError(msg)


def build_plan(model: ExportLike, config: HwConfig | None = None) -> Plan:
    config = config or HwConfig()
    export = as_export(model)
    P = config.pes
    _check(isinstance(P, int) and 1 <= P <= 16 and P & (P - 1) == 0,
           f"PE array {config.rows}x{config.cols} = {P} PEs: need a power of two from 1 to 16")
    _check(config.fifo_depth >= 2, "fifo_depth must be at least 2")
    T, F, C = export.frames, export.features, export.C
    _check(F == N_GATES, f"export has {F} features; the accelerator is built for {N_GATES}")
    _check(len(export.labels) == N_CLASSES,
           f"export has {len(export.labels)} labels; the record holds {N_CLASSES}")
    wbits = export.weight_bits
    _check(2 <= wbits <= MAX_OPERAND_BITS,
           f"weight_bits={wbits}: the PE multipliers take at most {MAX_OPERAND_BITS}-bit weights")
    abits = export.act_bits
    _check(2 <= abits <= MAX_OPERAND_BITS,
           f"act_bits={abits}: the PE multipliers take at most {MAX_OPERAND_BITS}-bit activations")
    wmin, wmax = -(1 << (wbits - 1)), (1 << (wbits - 1)) - 1

    def check_w(name, w):
        _check(w.min() >= wmin and w.max() <= wmax,
               f"{name} weights span [{w.min()}, {w.max()}], outside {wbits}-bit signed")
        return w

    names = layer_names(export)
    blocks = export.blocks
    for i, b in enumerate(blocks, start=1):
        _check(b.c_out == C and b.c_in == (F if i == 1 else C),
               f"block {i}: c_in/c_out {b.c_in}/{b.c_out} do not match C={C}")
        _check(b.kernel % 2 == 1, f"block {i}: depthwise kernel {b.kernel} is not odd")
        _check(b.has_res == (i != 1),
               f"block {i}: the accelerator expects a residual branch in blocks 2..4 only")
        _check(b.kernel // 2 + 1 >= 6,
               f"block {i}: depthwise kernel {b.kernel} too short for the pipeline (>= 11)")

    # value ranges of the stored tensors
    x_rng = (export.input.lo, export.input.hi)
    out_rng = [b.out_range for b in blocks]
    in_rng = [x_rng] + out_rng[:3]
    x_tensors = [x_rng, out_rng[1], out_rng[3]]
    b_tensors = [out_rng[0], out_rng[2]]
    lane_bits = max(tensor_bits(lo, hi)[0] for lo, hi in x_tensors + b_tensors)
    dw_lo = min(b.dw.lo for b in blocks)
    dw_hi = max(b.dw.hi for b in blocks)
    dbits = signed_bits(dw_lo, dw_hi)
    act_bits = max(lane_bits + 1, dbits)
    _check(act_bits <= 16, "activation operands wider than 16 bits")

    # accumulator widths, from the actual integer weights and the input ranges
    acc = 1
    for i, b in enumerate(blocks):
        lo, hi = in_rng[i]
        dw = check_w(f"block{i + 1}.dw", b.dw.w)
        acc = max(acc, _acc_bits(dw, lo, hi))
        acc = max(acc, _acc_bits(check_w(f"block{i + 1}.pw", b.pw.w), b.dw.lo, b.dw.hi, b.pw.b))
        if b.has_res:
            acc = max(acc, _acc_bits(check_w(f"block{i + 1}.res", b.res.w), lo, hi, b.res.b))
    head = export.head
    acc = max(acc, _acc_bits(check_w("head", head.w), *out_rng[3], head.b))
    _check(acc <= MAX_ACC_BITS, f"accumulators need {acc} bits (> {MAX_ACC_BITS})")

    # requant output ranges and shifts
    rq_lo, rq_hi, shifts = 0, 0, []
    for b in blocks:
        shifts += list(b.dw.shift)
        rq_lo, rq_hi = min(rq_lo, b.dw.lo), max(rq_hi, b.dw.hi)
        for layer in (b.pw, b.res):
            if layer is not None:
                shifts.append(layer.shift)
                rq_lo, rq_hi = min(rq_lo, layer.lo), max(rq_hi, layer.hi)
    rq_bits = signed_bits(rq_lo, rq_hi)
    add_shifts = [b.add.shift for b in blocks if b.add is not None]

    gx = -(-max(F, C) // P)
    gb = -(-C // P)
    # frame-parallel depthwise: blocks 2..4 (their input has C channels), with all skipping
    frame_dw = config.depthwise == "frames"

    # layer table (record order) and memory images
    layers: list[Layer] = []
    weight_image: list[int] = []
    aux_vals: list[list[int]] = []
    for name in names:
        if name == "classifier":
            continue
        idx = len(layers)
        if name == "head":
            w = head.w
            lay = Layer(idx, name, "head", None, C, F, -(-F // P))
            bias = head.b
        else:
            bi = int(name[5]) - 1
            part = name.split(".")[1]
            b = blocks[bi]
            if part == "dw":
                w = b.dw.w
                cin = b.c_in
                lay = Layer(idx, name, "dw", bi + 1, cin, cin, -(-cin // P), kernel=b.kernel,
                            lo=b.dw.lo, hi=b.dw.hi, frames=frame_dw and bi >= 1)
            else:
                src = b.pw if part == "pw" else b.res
                w = src.w
                lay = Layer(idx, name, part, bi + 1, b.c_in, b.c_out, -(-b.c_out // P),
                            shift=src.shift, lo=src.lo, hi=src.hi)
                bias = src.b
        lay.wbase = len(weight_image)
        lay.abase = len(aux_vals)
        if lay.kind == "dw" and lay.frames:
            lay.dense_per_frame = lay.c_in * lay.kernel
            # lane j computes output frame s0 + j of the tile; the input at window offset r
            # (frame s0 - K/2 + r) meets tap r - j there
            K = lay.kernel
            for c in range(lay.c_in):
                for r in range(K + P - 1):
                    weight_image.append(pack([w[c, r - j] if 0 <= r - j < K else 0
                                              for j in range(P)], wbits))
                aux_vals.append([b.dw.shift[c]] * P)
        elif lay.kind == "dw":
            lay.dense_per_frame = lay.c_in * lay.kernel
            for g in range(lay.groups):
                for k in range(lay.kernel):
                    weight_image.append(pack([w[g * P + p, k] if g * P + p < lay.c_in else 0
                                              for p in range(P)], wbits))
                aux_vals.append([b.dw.shift[g * P + p] if g * P + p < lay.c_in else 0
                                 for p in range(P)])
        else:
            lay.dense_per_frame = lay.c_in * lay.n_out
            for og in range(lay.groups):
                for c in range(lay.c_in):
                    weight_image.append(pack([w[og * P + p, c] if og * P + p < lay.n_out else 0
                                              for p in range(P)], wbits))
                aux_vals.append([int(bias[og * P + p]) if og * P + p < lay.n_out else 0
                                 for p in range(P)])
        layers.append(lay)
    aux_bits = max(signed_bits(min(min(v) for v in aux_vals), max(max(v) for v in aux_vals)), 2)
    aux_image = [pack(v, aux_bits) for v in aux_vals]

    by_name = {l.name: l for l in layers}
    passes: list[Pass] = []
    for i, b in enumerate(blocks, start=1):
        res = b.has_res
        passes.append(Pass(i - 1, False, b.kernel, b.kernel // 2, b.c_in,
                           by_name[f"block{i}.dw"].groups, by_name[f"block{i}.pw"].groups, res,
                           by_name[f"block{i}.dw"].index, by_name[f"block{i}.pw"].index,
                           by_name[f"block{i}.res"].index if res else 0,
                           "X" if i % 2 == 1 else "B", in_rng[i - 1][0] < 0,
                           (b.add.shift, b.add.lo, b.add.hi) if res else None,
                           frames=by_name[f"block{i}.dw"].frames, lanes=P))
    hl = by_name["head"]
    passes.append(Pass(4, True, 1, 0, C, 1, hl.groups, False, 0, hl.index, 0, "X",
                       out_rng[3][0] < 0, None, lanes=P))

    wc, bc = export.classifier.w, export.classifier.b
    cls_wbits = signed_bits(int(wc.min()), int(wc.max()))
    # the classifier's column sums (started from zero or from the bias) and the logits share
    # the width
    neg, pos = wc.clip(max=0).sum(axis=1) * T, wc.clip(min=0).sum(axis=1) * T
    lo, hi = min(neg.min(), (neg + bc).min(), bc.min()), max(pos.max(), (pos + bc).max(), bc.max())
    logit_bits = signed_bits(int(lo), int(hi))
    _check(logit_bits <= 32, "classifier logits need more than 32 bits")
    cls_columns = [pack(wc[:, f], cls_wbits) for f in range(F)]

    shifts_all = shifts
    return Plan(model=export, config=config, P=P, lg_p=P.bit_length() - 1, T=T, F=F, C=C,
                wbits=wbits, lane_bits=lane_bits, dbits=dbits, act_bits=act_bits, acc_bits=acc,
                rq_bits=rq_bits, aux_bits=aux_bits, shift_min=min(shifts_all),
                shift_max=max(shifts_all), add_shift_min=min(add_shifts),
                add_shift_max=max(add_shifts), gx=gx, gb=gb, mask_width=max(F, C),
                layers=layers, passes=passes, weight_image=weight_image, aux_image=aux_image,
                cls_columns=cls_columns, cls_bias=[int(v) for v in bc], cls_wbits=cls_wbits,
                logit_bits=logit_bits)


def real_macs(plan: Plan) -> dict:
    """Products with real operands per layer ('same' padding taps excluded): what the hardware
    counters add up to, issued + gated, for every PE layer."""
    T = plan.T
    out = {}
    for lay in plan.layers:
        if lay.kind == "dw":
            h = lay.kernel // 2
            taps = sum(min(lay.kernel - 1, T - 1 - t + h) - max(0, h - t) + 1 for t in range(T))
            out[lay.name] = lay.c_in * taps
        else:
            out[lay.name] = lay.c_in * lay.n_out * T
    out["classifier"] = N_CLASSES * plan.F * T
    return out


def thop_macs(plan: Plan) -> dict:
    """Dense MACs per layer in the convention of `info` (thop): a convolution counts
    out_elements x (c_in / groups) x k, padding taps included; the classifier is the Linear
    on the time mean, F x 12. The folded BatchNorms, which thop also counts, have no layer here."""
    out = {lay.name: lay.c_in * (lay.kernel if lay.kind == "dw" else lay.n_out) * plan.T
           for lay in plan.layers}
    out["classifier"] = N_CLASSES * plan.F
    return out
