"""SparkNet with Brevitas fixed-point layers: the model that QAT trains and export reads.

Built from a float SparkNet with every BatchNorm folded into the conv before it, so it has
no BN. All scales are powers of two (Brevitas FixedPoint quantizers), so every rescale of the
integer model (docs/integer-model.md) is a shift:

    x ─ QuantIdentity (signed, input_bits = act_bits unless set)           input features
    per block:  depthwise QuantConv1d (per-channel PoT weight scale, no bias)
                ─ QuantIdentity (signed)                                   d
                pointwise QuantConv1d (+ Int32Bias)
                  block 1:    ─ QuantReLU (unsigned)                       y
                  blocks 2-4: residual QuantConv1d (+ Int32Bias) on the block input;
                              pointwise and residual each through ONE shared signed
                              QuantIdentity (same scale), summed, ─ QuantReLU (unsigned)
    head QuantConv1d (+ Int32Bias) ─ h; hard gate z = [h > 0]
    counts n[f] = sum_t z[f, t] (integer, scale 1) ─ QuantLinear (+ Int32Bias) ─ logits

With power-of-two scales, integer weights/activations and accumulators well under 2**24,
Brevitas's float fake-quant forward is exact, so `integer_logits()` equals the integer
golden model bit for bit.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from brevitas.nn import QuantConv1d, QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import (Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint, Int32Bias,
                            Uint8ActPerTensorFixedPoint)
from brevitas.quant.fixed_point import Int8WeightPerChannelFixedPoint
from brevitas.quant_tensor import IntQuantTensor, QuantTensor

from sparknet_hw.errors import UserError
from sparknet_hw.model import (BLOCKS, GATE_NOISE_STD, N_CLASSES, N_FEATURES, N_FRAMES, SparkNet,
                               check_width)

BIT_WIDTHS = range(4, 9)          # supported weight and activation widths
GATE_MODES = ("noisy", "soft", "ste", "hard")
COUNT_BITS = max(1, math.ceil(math.log2(N_FRAMES + 1)))   # gate counts 0..T, unsigned
DEFAULT_CALIB_STEPS = 16


class BitWidthError(UserError):
    pass


def check_bits(weight_bits: int, act_bits: int, input_bits: int | None = None) -> None:
    pairs = [("weight", weight_bits), ("activation", act_bits)]
    if input_bits is not None:
        pairs.append(("input", input_bits))
    for name, bits in pairs:
        if not isinstance(bits, int) or bits not in BIT_WIDTHS:
            raise BitWidthError(f"unsupported {name} bit width {bits}: the fixed-point SparkNet "
                                f"supports {BIT_WIDTHS.start}..{BIT_WIDTHS.stop - 1} bits")


# --------------------------------------------------------------------------- BN folding
def fold_bn(weight: torch.Tensor, bias, bn: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    """Conv weight [O, ...] and bias (or None) followed by eval-mode BN -> folded weight, bias."""
    std = torch.sqrt(bn.running_var + bn.eps)
    gamma = bn.weight if bn.weight is not None else torch.ones_like(std)
    beta = bn.bias if bn.bias is not None else torch.zeros_like(std)
    factor = gamma / std
    w = weight * factor.reshape(-1, *([1] * (weight.dim() - 1)))
    b = bias if bias is not None else torch.zeros_like(std)
    b = (b - bn.running_mean) * factor + beta
    return w.detach().clone(), b.detach().clone()


def folded_float_params(model: SparkNet) -> dict:
    """Float weights of `model` with every BN folded (what the quantized model starts from)."""
    out = {"blocks": []}
    for block in model.blocks:
        pw_w, pw_b = fold_bn(block.pointwise.weight, None, block.bn)
        entry = {"dw": block.depthwise.weight.detach().clone(), "pw_w": pw_w, "pw_b": pw_b,
                 "res_w": None, "res_b": None}
        if block.residual is not None:
            entry["res_w"], entry["res_b"] = fold_bn(block.residual[0].weight, None,
                                                     block.residual[1])
        out["blocks"].append(entry)
    out["head_w"], out["head_b"] = fold_bn(model.head.weight, model.head.bias, model.head_bn)
    out["cls_w"] = model.classifier.weight.detach().clone()
    out["cls_b"] = model.classifier.bias.detach().clone()
    return out


# --------------------------------------------------------------------------- model
def _signed_act(bits, calib_steps):
    return QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=bits,
                         collect_stats_steps=calib_steps, return_quant_tensor=True)


def _relu_act(bits, calib_steps):
    return QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=bits,
                     collect_stats_steps=calib_steps, return_quant_tensor=True)


def _conv1x1(c_in, c_out, weight_bits):
    return QuantConv1d(c_in, c_out, 1, bias=True, weight_quant=Int8WeightPerTensorFixedPoint,
                       weight_bit_width=weight_bits, bias_quant=Int32Bias,
                       return_quant_tensor=True)


class QuantBlock(nn.Module):
    def __init__(self, c_in, c_out, kernel, residual, weight_bits, act_bits, calib_steps):
        super().__init__()
        self.kernel = kernel
        self.depthwise = QuantConv1d(c_in, c_in, kernel, padding=kernel // 2, groups=c_in,
                                     bias=False, weight_quant=Int8WeightPerChannelFixedPoint,
                                     weight_bit_width=weight_bits, return_quant_tensor=True)
        self.dw_quant = _signed_act(act_bits, calib_steps)
        self.pointwise = _conv1x1(c_in, c_out, weight_bits)
        self.residual = _conv1x1(c_in, c_out, weight_bits) if residual else None
        # blocks 2..4: pointwise and residual both go through this one quantizer (same scale)
        self.sum_quant = _signed_act(act_bits, calib_steps) if residual else None
        self.out_act = _relu_act(act_bits, calib_steps)

    def forward(self, a, trace=None, prefix=""):
        dw = self.depthwise(a)
        d = self.dw_quant(dw)
        pw = self.pointwise(d)
        if self.residual is None:
            y = self.out_act(pw)
            p, r, res = y, None, None
        else:
            res = self.residual(a)
            p, r = self.sum_quant(pw), self.sum_quant(res)
            # p + r is an integer sum (one shared scale); the float values are added so that
            # the stats-collection phase (where each call has its own scale) also works
            y = self.out_act(_value(p) + _value(r))
        if trace is not None:
            trace.update({prefix + "in": a, prefix + "dw_acc": dw, prefix + "dw": d,
                          prefix + "pw_acc": pw, prefix + "res_acc": res, prefix + "pw": p,
                          prefix + "res": r, prefix + "out": y})
        return y


class _HardGateSTE(torch.autograd.Function):
    """Forward: z = [h > 0]; backward: the gradient of clamp(tanh(h) + 0.5, 0, 1)."""

    @staticmethod
    def forward(ctx, h):
        ctx.save_for_backward(h)
        return (h > 0).to(h.dtype)

    @staticmethod
    def backward(ctx, grad):
        (h,) = ctx.saved_tensors
        with torch.enable_grad():
            hh = h.detach().requires_grad_(True)
            soft = torch.clamp(torch.tanh(hh) + 0.5, 0.0, 1.0)
            (g,) = torch.autograd.grad(soft, hh, grad)
        return g


class QuantSparkNet(nn.Module):
    """Fixed-point SparkNet. forward(x) -> (logits as float, mu = tanh(h)), like SparkNet.

    gate_mode: "noisy" (float recipe: clamp(mu + 0.5 + N(0, gate_noise^2)) in training, soft
    in eval; gate_noise is the float model's, the authors' 0.5 by default), "soft"
    (clamp(mu + 0.5)), "ste" (hard forward, soft backward) or "hard". In eval mode the gate
    is always hard (the integer model), unless `eval_gate` says otherwise.
    """

    def __init__(self, C: int = 8, weight_bits: int = 8, act_bits: int = 8,
                 n_classes: int = N_CLASSES, calib_steps: int = DEFAULT_CALIB_STEPS,
                 input_bits: int | None = None):
        super().__init__()
        self.C = check_width(C)
        input_bits = act_bits if input_bits is None else input_bits
        check_bits(weight_bits, act_bits, input_bits)
        self.weight_bits, self.act_bits, self.n_classes = weight_bits, act_bits, n_classes
        self.input_bits = input_bits
        self.calib_steps = calib_steps
        # the MFCC input has its own width: with 4..6-bit activations, 8-bit input features
        # (input lo/hi in the export) keep far more accuracy; the default is act_bits
        self.input_quant = _signed_act(input_bits, calib_steps)
        # fixed per-feature power-of-two gain before the per-tensor input quantizer: MFCC
        # coefficients differ ~50x in range, so one scale would round the high ones to zero.
        # The first (depthwise, per-channel) layer takes the inverse gain in its weights.
        self.register_buffer("input_shift", torch.zeros(N_FEATURES, dtype=torch.int64))
        chans = [N_FEATURES] + [C] * len(BLOCKS)
        self.blocks = nn.ModuleList(
            QuantBlock(chans[i], chans[i + 1], k, res, weight_bits, act_bits, calib_steps)
            for i, (k, res) in enumerate(BLOCKS))
        self.head = _conv1x1(C, N_FEATURES, weight_bits)
        self.classifier = QuantLinear(N_FEATURES, n_classes, bias=True,
                                      weight_quant=Int8WeightPerTensorFixedPoint,
                                      weight_bit_width=weight_bits, bias_quant=Int32Bias,
                                      return_quant_tensor=True)
        self.gate_mode = "noisy"
        self.gate_noise = GATE_NOISE_STD
        self.eval_gate = "hard"

    def config(self) -> dict:
        """Everything needed (with the state dict) to rebuild this model."""
        return {"C": self.C, "weight_bits": self.weight_bits, "act_bits": self.act_bits,
                "input_bits": self.input_bits,
                "n_classes": self.n_classes, "calib_steps": self.calib_steps}

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_float(cls, model: SparkNet, weight_bits: int = 8, act_bits: int = 8,
                   calib_steps: int = DEFAULT_CALIB_STEPS,
                   input_bits: int | None = None,
                   input_shift=None) -> "QuantSparkNet":
        """Copy a float SparkNet, BN folded; the classifier takes gate counts, so its weight
        is the float weight / T (mean over time then linear == counts then linear / T).
        input_shift: per-feature log2 input gain (see choose_input_shift), folded out of the
        first depthwise weights so the function is unchanged."""
        q = cls(model.C, weight_bits, act_bits, model.classifier.out_features, calib_steps,
                input_bits)
        p = folded_float_params(model)
        if input_shift is not None:
            q.input_shift.copy_(torch.as_tensor(input_shift, dtype=torch.int64))
            gain = torch.exp2(q.input_shift.to(torch.float32))
            p["blocks"][0]["dw"] = p["blocks"][0]["dw"] / gain.view(-1, 1, 1)
        with torch.no_grad():
            for qb, fb in zip(q.blocks, p["blocks"]):
                qb.depthwise.weight.copy_(fb["dw"])
                qb.pointwise.weight.copy_(fb["pw_w"])
                qb.pointwise.bias.copy_(fb["pw_b"])
                if qb.residual is not None:
                    qb.residual.weight.copy_(fb["res_w"])
                    qb.residual.bias.copy_(fb["res_b"])
            q.head.weight.copy_(p["head_w"])
            q.head.bias.copy_(p["head_b"])
            q.classifier.weight.copy_(p["cls_w"] / N_FRAMES)
            q.classifier.bias.copy_(p["cls_b"])
        return q

    @torch.no_grad()
    def calibrate(self, batches) -> None:
        """Initialise every activation scale from statistics of `batches` (float features
        [B, 32, 101]); runs exactly `calib_steps` forward passes (cycling over batches)."""
        batches = list(batches)
        if not batches:
            raise ValueError("calibrate needs at least one batch")
        was_training, mode = self.training, self.gate_mode
        self.train()
        self.gate_mode = "soft"
        for i in range(self.calib_steps):
            self(batches[i % len(batches)])
        self.gate_mode = mode
        self.train(was_training)

    # ---------------------------------------------------------------- forward
    def _gate(self, h):
        mode = self.gate_mode if self.training else self.eval_gate
        if mode == "hard":
            return (h > 0).to(h.dtype)
        if mode == "ste":
            return _HardGateSTE.apply(h)
        mu = torch.tanh(h)
        if mode == "noisy" and self.training:
            mu = mu + self.gate_noise * torch.randn_like(mu)
        return torch.clamp(mu + 0.5, 0.0, 1.0)

    def forward_quant(self, x, trace=None):
        """x float [B, 32, 101] -> (logits QuantTensor, head pre-activation h, gate z)."""
        gain = torch.pow(2.0, self.input_shift.to(torch.float32)).view(1, -1, 1)  # ONNX Pow
        a = self.input_quant(x * gain)                  # exact: powers of two
        if trace is not None:
            trace["input"] = a
        for i, block in enumerate(self.blocks, start=1):
            a = block(a, trace, f"block{i}.")
        h = self.head(a)
        z = self._gate(_value(h))
        n = z.sum(dim=2)
        counts = IntQuantTensor(n, torch.tensor(1.0), torch.tensor(0.0),
                                torch.tensor(float(COUNT_BITS)), False, self.training)
        logits = self.classifier(counts)
        if trace is not None:
            trace.update({"head_acc": h, "gate": z, "gate_counts": n, "logits": logits})
        return logits, h, z

    def forward(self, x):
        logits, h, _ = self.forward_quant(x)
        return _value(logits), torch.tanh(_value(h))

    @torch.no_grad()
    def integer_logits(self, x) -> torch.Tensor:
        """Integer logits [B, 12] (int64) of the hard-gate model in eval mode."""
        was_training = self.training
        self.eval()
        try:
            logits, _, _ = self.forward_quant(x)
            return logits.int().to(torch.int64)
        finally:
            self.train(was_training)

    @torch.no_grad()
    def integer_trace(self, x) -> dict:
        """Every intermediate tensor of the eval-mode model as int64 (accumulators included),
        keyed like quant.golden.run's output, with a batch dimension in front."""
        was_training = self.training
        self.eval()
        try:
            trace = {}
            self.forward_quant(x, trace)
        finally:
            self.train(was_training)
        out = {}
        for key, value in trace.items():
            if value is None:
                continue
            if key in ("gate", "gate_counts"):
                out[key] = value.to(torch.int64)
            elif key.endswith("_acc") or key == "head_acc":
                out[key] = _acc_int(value)
            else:
                out[key] = value.int().to(torch.int64)
        return out


def _value(t):
    """The float value of a QuantTensor (plain tensors pass: Brevitas export mode)."""
    return t.value if isinstance(t, QuantTensor) else t


def _acc_int(qt) -> torch.Tensor:
    """Accumulator integers of a conv output QuantTensor (value / scale, checked exact)."""
    scale = qt.scale
    v = qt.value / scale
    r = torch.round(v)
    if not torch.equal(v, r):
        raise AssertionError("accumulator is not an integer multiple of its scale")
    return r.to(torch.int64)


def choose_input_shift(features, max_shift: int = 7, quantile: float = 0.999) -> torch.Tensor:
    """Per-feature log2 gains that bring every MFCC coefficient's range (the `quantile` of
    |x| over `features` [N, 32, T]) up to within a factor of two of the widest one."""
    x = torch.as_tensor(features, dtype=torch.float32).abs().transpose(0, 1).reshape(
        N_FEATURES, -1)
    if x.shape[1] > 200_000:                           # quantile() has a size limit
        x = x[:, torch.linspace(0, x.shape[1] - 1, 200_000).long()]
    q = torch.quantile(x, quantile, dim=1).clamp_min(1e-6)
    return torch.floor(torch.log2(q.max() / q)).clamp(0, max_shift).to(torch.int64)


# --------------------------------------------------------------------------- checkpoints
def build_from_config(config: dict) -> QuantSparkNet:
    return QuantSparkNet(config["C"], config["weight_bits"], config["act_bits"],
                         config.get("n_classes", N_CLASSES),
                         config.get("calib_steps", DEFAULT_CALIB_STEPS),
                         config.get("input_bits"))


def load_qat_model(payload: dict, path="checkpoint") -> QuantSparkNet:
    """Rebuild the Brevitas model of a "qat" checkpoint payload (checkpoint.load_checkpoint)."""
    from sparknet_hw.checkpoint import CheckpointError
    if payload.get("kind") != "qat":
        raise CheckpointError(f"{path}: this is a {payload.get('kind')} checkpoint, a qat one is "
                              f"needed here; quantize it first with 'python -m sparknet_hw "
                              f"quantize'")
    meta = payload.get("meta") or {}
    config = dict(meta.get("model_config") or {})
    config.setdefault("C", payload["C"])
    if "weight_bits" not in config:
        config["weight_bits"] = meta.get("weight_bits")
    if "act_bits" not in config:
        config["act_bits"] = meta.get("act_bits")
    try:
        model = build_from_config(config)
    except BitWidthError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    state = dict(payload["state_dict"])
    # checkpoints from before the per-feature input gain: no gain
    state.setdefault("input_shift", torch.zeros(N_FEATURES, dtype=torch.int64))
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as exc:
        first = str(exc).splitlines()[0][:100]
        raise CheckpointError(f"{path}: weights do not fit the fixed-point SparkNet C="
                              f"{config['C']} ({first}); re-create it with 'quantize'") from None
    return model.eval()


def load_qat_checkpoint(path) -> QuantSparkNet:
    from sparknet_hw.checkpoint import load_checkpoint
    return load_qat_model(load_checkpoint(path, kind="qat"), path)
