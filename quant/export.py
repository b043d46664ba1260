"""Export a fixed-point SparkNet to the integer contract (docs/integer-model.md).

`export_model(model_or_checkpoint) -> Export` reads the integer weights, biases and
power-of-two scales out of the Brevitas model, turns every rescale into a shift and builds the
typed export (quant/export_types.py) directly, layer by layer; `write_export` writes it as
`sparknet_export.json`. `export_qonnx` writes the Brevitas QONNX graph as well.

The functions that read an export back (float_exact_bits, self_check_inputs, verify) take an
`Export` or its JSON dict.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from sparknet_hw.errors import UserError
from sparknet_hw.model import N_FEATURES, N_FRAMES

from .accumulators import acc_bits
from .export_format import EXPORT_FILENAME, validate
from .export_types import (Block, Classifier, DenseLayer, DepthwiseLayer, Export, ExportLike,
                           Head, InputFormat, ResidualAdd, as_export, to_ints,
                           to_matrix)
from .qat_model import QuantSparkNet
from sparknet_hw.data.labels import LABELS

QONNX_FILENAME = "sparknet_qonnx.onnx"
FLOAT_EXACT_BITS = 24     # float32 represents every integer below 2**24 exactly


class ExportFailure(UserError):
    pass


def _frac(scale) -> int | list[int]:
    """-log2(scale) for a power-of-two scale (tensor of one or more values)."""
    s = torch.as_tensor(scale).detach().double().flatten()
    fracs = []
    for v in s.tolist():
        f = -math.log2(v)
        if v <= 0 or f != round(f) or 2.0 ** -round(f) != v:
            raise ExportFailure(f"scale {v!r} is not a power of two; the model was not built "
                                f"with fixed-point quantizers")
        fracs.append(int(round(f)))
    return fracs[0] if len(fracs) == 1 else fracs


def _range(qt) -> tuple[int, int]:
    """Integer range of an activation QuantTensor (Brevitas act quantizers are not narrow)."""
    bits = int(qt.bit_width)
    if bool(qt.signed):
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _weight(layer):
    qw = layer.quant_weight()
    return qw, qw.int().to(torch.int64)


def _bias(layer, input_qt, qw):
    qb = layer.bias_quant(layer.bias, input_qt, qw)
    return qb.int().to(torch.int64)


def _as_model(model_or_ckpt) -> tuple[QuantSparkNet, dict]:
    if isinstance(model_or_ckpt, QuantSparkNet):
        return model_or_ckpt, {"kind": "qat", "checkpoint": None}
    from sparknet_hw.checkpoint import load_checkpoint
    from .qat_model import load_qat_model
    payload = load_checkpoint(model_or_ckpt, kind="qat")
    meta = payload.get("meta") or {}
    source = {"kind": "qat", "checkpoint": Path(model_or_ckpt).name}
    for key in ("float_checkpoint", "accuracy", "validation", "epochs", "data"):
        if key in meta:
            source[key] = meta[key]
    return load_qat_model(payload, model_or_ckpt), source


@torch.no_grad()
def export_model(model_or_ckpt, source: dict | None = None) -> Export:
    """The integer model of a QuantSparkNet (or of a "qat" checkpoint path) as a typed
    `Export`: every shift, lo/hi, acc_bits and frac, checked against the contract."""
    model, src = _as_model(model_or_ckpt)
    if source:
        src.update(source)
    was_training = model.training
    model.eval()
    try:
        trace = {}
        model.forward_quant(torch.zeros(1, N_FEATURES, N_FRAMES), trace)
        export = _build(model, trace, src)
    finally:
        model.train(was_training)
    # the contract's checks (shapes, ranges, shift limits) stay in one place: the JSON schema
    validate(export.to_dict())
    export.source["float_exact"] = float_exact_bits(export) < FLOAT_EXACT_BITS
    return export


def _dense(weight, bias, shift: int, lo: int, hi: int, in_range, wfrac) -> DenseLayer:
    return DenseLayer(to_matrix(weight), to_ints(bias), int(shift), lo, hi,
                      acc_bits(weight, *in_range, bias), wfrac)


def _block(i: int, block, trace: dict, a_qt, a_frac: int) -> tuple[Block, object, int]:
    """Block i as typed layers, with the QuantTensor and frac of its output."""
    p = f"block{i}."
    in_range = _range(a_qt)
    d_qt, y_qt = trace[p + "dw"], trace[p + "out"]
    dqw, dw_int = _weight(block.depthwise)
    dw_wfrac = _frac(dqw.scale)
    dw_wfrac = dw_wfrac if isinstance(dw_wfrac, list) else [dw_wfrac] * dw_int.shape[0]
    d_frac, y_frac = _frac(d_qt.scale), _frac(y_qt.scale)
    d_range, y_range = _range(d_qt), _range(y_qt)
    dw_weight = dw_int[:, 0, :].numpy()
    dw = DepthwiseLayer(to_matrix(dw_weight), to_ints(a_frac + f - d_frac for f in dw_wfrac),
                        *d_range, acc_bits(dw_weight, *in_range), to_ints(dw_wfrac))
    pqw, pw_int = _weight(block.pointwise)
    pw_weight, pw_bias = pw_int[:, :, 0].numpy(), _bias(block.pointwise, d_qt, pqw).numpy()
    pw_wfrac = _frac(pqw.scale)
    if block.residual is None:
        pw = _dense(pw_weight, pw_bias, d_frac + pw_wfrac - y_frac, *y_range,
                    d_range, pw_wfrac)
        res = add = None
    else:
        m_qt = trace[p + "pw"]
        m_frac = _frac(m_qt.scale)
        if _frac(trace[p + "res"].scale) != m_frac:
            raise ExportFailure(f"block {i}: pointwise and residual scales differ")
        m_range = _range(m_qt)
        rqw, res_int = _weight(block.residual)
        res_weight = res_int[:, :, 0].numpy()
        res_bias = _bias(block.residual, a_qt, rqw).numpy()
        res_wfrac = _frac(rqw.scale)
        pw = _dense(pw_weight, pw_bias, d_frac + pw_wfrac - m_frac, *m_range,
                    d_range, pw_wfrac)
        res = _dense(res_weight, res_bias, a_frac + res_wfrac - m_frac,
                     *m_range, in_range, res_wfrac)
        add = ResidualAdd(m_frac - y_frac, *y_range, m_frac)
    typed = Block(block.kernel, dw_int.shape[0], pw_int.shape[0], dw, pw, res, add,
                  a_frac, y_frac)
    return typed, y_qt, y_frac


def _build(model: QuantSparkNet, trace: dict, source: dict) -> Export:
    a_qt = trace["input"]
    a_frac = _frac(a_qt.scale)
    inp = InputFormat(to_ints(a_frac + int(s) for s in model.input_shift.tolist()),
                      *_range(a_qt))
    blocks = []
    for i, block in enumerate(model.blocks, start=1):
        typed, a_qt, a_frac = _block(i, block, trace, a_qt, a_frac)
        blocks.append(typed)
    hqw, head_int = _weight(model.head)
    head_weight = head_int[:, :, 0].numpy()
    head_bias = _bias(model.head, a_qt, hqw).numpy()
    head = Head(to_matrix(head_weight), to_ints(head_bias),
                acc_bits(head_weight, *_range(a_qt), head_bias), a_frac + _frac(hqw.scale))
    # the classifier's input (gate counts) has scale 1, so its bias scale is the weight scale
    cqw, cls_int = _weight(model.classifier)
    cls_weight, cls_bias = cls_int.numpy(), _bias_counts(model, cqw).numpy()
    classifier = Classifier(to_matrix(cls_weight), to_ints(cls_bias),
                            acc_bits(cls_weight, 0, N_FRAMES, cls_bias), _frac(cqw.scale))
    return Export(model.C, N_FEATURES, N_FRAMES, tuple(LABELS[:model.n_classes]),
                  model.weight_bits, model.act_bits, inp, tuple(blocks), head, classifier,
                  dict(source))


def _bias_counts(model: QuantSparkNet, cqw):
    """Classifier bias integers: Brevitas's Int32Bias with the gate counts' scale of 1."""
    from brevitas.quant_tensor import IntQuantTensor
    from .qat_model import COUNT_BITS
    counts = IntQuantTensor(torch.zeros(1, N_FEATURES), torch.tensor(1.0), torch.tensor(0.0),
                            torch.tensor(float(COUNT_BITS)), False, False)
    return _bias(model.classifier, counts, cqw)


def float_exact_bits(export: ExportLike) -> int:
    """Bits needed by the largest partial sum any layer can reach (sum |w| * max|x| + |b|).
    Below 24, float32 adds these integers (times powers of two) exactly in any order, so
    Brevitas's fake-quant forward equals the integer model."""
    def worst(weight, lo, hi, bias=None):
        w = np.abs(np.asarray(weight, dtype=np.int64))
        total = w.sum(axis=1) * max(abs(lo), abs(hi))
        if bias is not None:
            total = total + np.abs(np.asarray(bias, dtype=np.int64))
        return int(total.max())

    export = as_export(export)
    worst_value = 0
    for block, (lo, hi) in zip(export.blocks, export.layer_ranges()):
        dw, pw, res = block.dw, block.pw, block.res
        worst_value = max(worst_value, worst(dw.w, lo, hi), worst(pw.w, dw.lo, dw.hi, pw.b))
        if res is not None:
            worst_value = max(worst_value, worst(res.w, lo, hi, res.b))
    head, cls = export.head, export.classifier
    worst_value = max(worst_value, worst(head.w, *export.blocks[-1].out_range, head.b),
                      worst(cls.w, 0, export.frames, cls.b))
    return worst_value.bit_length() + 1


def write_export(export: ExportLike, out_dir) -> Path:
    """Write `sparknet_export.json` into out_dir (created if needed); returns its path."""
    if isinstance(export, Export):
        export = export.to_dict()
    validate(export)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / EXPORT_FILENAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(_dumps(export) + "\n")
    tmp.replace(path)
    return path


def _dumps(obj, indent: int = 0) -> str:
    """JSON with one line per innermost list (weight rows stay readable and diffable)."""
    pad, inner = "  " * indent, "  " * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(k)}: {_dumps(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and obj and any(isinstance(v, (list, dict)) for v in obj):
        items = [inner + _dumps(v, indent + 1) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(obj)


class _LogitsOnly(torch.nn.Module):
    """The whole eval-mode model, input float features [1, 32, 101], output float logits
    (= integer logits * 2**-classifier.out_frac). Exported including the hard gate
    (Greater, Cast), the gate counts (ReduceSum) and the classifier (Gemm)."""

    def __init__(self, model: QuantSparkNet):
        super().__init__()
        self.model = model

    def forward(self, x):
        from .qat_model import _value
        return _value(self.model.forward_quant(x)[0])


def export_qonnx(model_or_ckpt, out_dir) -> Path:
    """Write the Brevitas QONNX graph of the full model (backbone, head, hard gate, counts,
    classifier) as DIR/sparknet_qonnx.onnx, cleaned up (shapes inferred) for qonnx's
    execute_onnx. Needs the onnx and onnxoptimizer packages."""
    model, _ = _as_model(model_or_ckpt)
    try:
        import warnings
        import onnxoptimizer  # noqa: F401  (Brevitas's ONNX export refuses to run without it)
        with warnings.catch_warnings():   # brevitas.graph: "fast_hadamard_transform not found"
            warnings.simplefilter("ignore", UserWarning)
            import brevitas.graph  # noqa: F401
        from brevitas.export import export_qonnx as brevitas_export_qonnx
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.util.cleanup import cleanup_model
    except ImportError as exc:
        raise ExportFailure(f"QONNX export needs the onnx, onnxoptimizer and qonnx packages "
                            f"({exc}); pip install onnx onnxoptimizer qonnx") from None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / QONNX_FILENAME
    was_training = model.training
    x = torch.zeros(1, N_FEATURES, N_FRAMES)
    try:
        # TorchScript exporter: the dynamo exporter cannot trace Brevitas's quant tensors here
        brevitas_export_qonnx(_LogitsOnly(model).eval(), input_t=x, export_path=str(path),
                              dynamo=False)
    finally:
        model.train(was_training)
    cleanup_model(ModelWrapper(str(path))).save(str(path))
    return path


def run_qonnx(path, features) -> np.ndarray:
    """Float logits [N, 12] of the QONNX graph on float features [N, 32, 101], executed by
    qonnx.core.onnx_exec.execute_onnx one clip at a time."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    wrapper = ModelWrapper(str(path))
    iname, oname = wrapper.graph.input[0].name, wrapper.graph.output[0].name
    x = np.asarray(features, dtype=np.float32)
    return np.concatenate([execute_onnx(wrapper, {iname: clip[None]})[oname] for clip in x])


def self_check_inputs(export: ExportLike, n_random: int = 48, seed: int = 0) -> np.ndarray:
    """Float features that exercise the whole input range: all-min, all-max, zeros, random
    extremes (+-max per element), random values over the range and beyond (clipping)."""
    export = as_export(export)
    rng = np.random.default_rng(seed)
    shape = (export.features, export.frames)
    step = np.exp2(-export.input.fracs.astype(np.float64))[:, None]
    lo, hi = export.input.lo * step, export.input.hi * step
    fixed = [np.full(shape, lo), np.full(shape, hi), np.zeros(shape)]
    extremes = [np.where(rng.random(shape) < 0.5, lo, hi) for _ in range(n_random // 4)]
    uniform = [rng.uniform(lo * 1.2, hi * 1.2, shape) for _ in range(n_random // 4)]
    normal = [rng.normal(0.0, 1.0, shape) * hi / s for s in (1, 2, 4, 8)
              for _ in range(max(1, n_random // 8))]
    return np.stack(fixed + extremes + uniform + normal).astype(np.float32)


def verify(model: QuantSparkNet, export: ExportLike, features, full: bool = False) -> dict:
    """Golden model vs Brevitas integer logits on float features [N, 32, 101]. With `full`,
    every intermediate tensor (accumulators, activations, gate map) is compared too."""
    from . import golden
    from .features import quantize_features
    export = as_export(export)
    x = np.asarray(features, dtype=np.float32)
    xq = quantize_features(x, export)
    if not full:
        want = model.integer_logits(torch.from_numpy(x)).numpy()
        got = golden.run_batch(export, xq)["logits"]
        bad = np.nonzero((got != want).any(axis=1))[0].tolist()
        return {"inputs": len(x), "mismatches": len(bad),
                "first_mismatch": bad[0] if bad else None}
    trace = {k: v.numpy() for k, v in model.integer_trace(torch.from_numpy(x)).items()}
    bad, tensors = [], set()
    for i in range(len(x)):
        ref = golden.run(export, xq[i])
        wrong = [k for k, v in trace.items() if k in ref and not np.array_equal(v[i], ref[k])]
        if wrong:
            bad.append(i)
            tensors.update(wrong)
    return {"inputs": len(x), "mismatches": len(bad), "first_mismatch": bad[0] if bad else None,
            "tensors": sorted(tensors)}
