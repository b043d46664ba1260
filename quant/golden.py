"""Integer-only golden model of the fixed-point SparkNet (docs/integer-model.md).

No floating point touches the datapath: every tensor is int64 and every rescale is a shift
with round-half-to-even, which is what Brevitas computes and what the RTL must compute.
The entry points take an `Export` or an export dict (converted once, `as_export`).
"""
from __future__ import annotations

import numpy as np

from sparknet_hw.errors import UserError

from .export_types import ExportLike, as_export


class FeatureError(UserError):
    pass


def requant(x: np.ndarray, shift, lo: int, hi: int) -> np.ndarray:
    """Shift right by `shift` (round half to even) or left by -shift, then clamp to [lo, hi]."""
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if shift.ndim == 1:  # per-channel shift over axis 0
        shift = shift[:, None]
    right = np.maximum(shift, 0)
    left = np.maximum(-shift, 0)
    q = x >> right                                  # floor(x / 2^right)
    rem = x - (q << right)                          # 0 <= rem < 2^right
    half = np.where(right > 0, np.int64(1) << np.maximum(right - 1, 0), 0)
    round_up = (rem > half) | ((rem == half) & (right > 0) & ((q & 1) == 1))
    q = q + round_up.astype(np.int64)
    q = q << left
    return np.clip(q, lo, hi)


def depthwise(a: np.ndarray, weight: np.ndarray) -> np.ndarray:
    channels, frames = a.shape
    kernel = weight.shape[1]
    pad = kernel // 2
    padded = np.zeros((channels, frames + 2 * pad), dtype=np.int64)
    padded[:, pad:pad + frames] = a
    acc = np.zeros((channels, frames), dtype=np.int64)
    for k in range(kernel):
        acc += weight[:, k:k + 1] * padded[:, k:k + frames]
    return acc


def pointwise(a: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return weight @ a + bias[:, None]


def check_features(model: ExportLike, x) -> np.ndarray:
    export = as_export(model)
    x = np.asarray(x)
    shape = (export.features, export.frames)
    if x.shape != shape:
        raise FeatureError(f"features have shape {x.shape}, expected {shape} (features x frames)")
    if not np.issubdtype(x.dtype, np.integer):
        raise FeatureError(f"features have dtype {x.dtype}; the golden model takes integer "
                           f"features (quantize float features first)")
    lo, hi = export.input.lo, export.input.hi
    if x.min() < lo or x.max() > hi:
        raise FeatureError(f"feature values span [{x.min()}, {x.max()}], outside the input "
                           f"range [{lo}, {hi}] of this export")
    return x.astype(np.int64)


def run(model: ExportLike, x) -> dict:
    """Run one clip. Returns every intermediate tensor, the gate map, gate counts and logits."""
    export = as_export(model)
    a = check_features(export, x)
    out: dict[str, np.ndarray] = {"input": a}
    for i, block in enumerate(export.blocks, start=1):
        dw, pw, res, add = block.dw, block.pw, block.res, block.add
        dw_acc = depthwise(a, dw.w)
        d = requant(dw_acc, dw.s, dw.lo, dw.hi)
        pw_acc = pointwise(d, pw.w, pw.b)
        p = requant(pw_acc, pw.shift, pw.lo, pw.hi)
        out.update({f"block{i}.dw_acc": dw_acc, f"block{i}.dw": d,
                    f"block{i}.pw_acc": pw_acc, f"block{i}.pw": p})
        if res is not None:
            res_acc = pointwise(a, res.w, res.b)
            r = requant(res_acc, res.shift, res.lo, res.hi)
            y = requant(p + r, add.shift, add.lo, add.hi)
            out.update({f"block{i}.res_acc": res_acc, f"block{i}.res": r})
        else:
            y = p
        out[f"block{i}.out"] = y
        a = y
    head_acc = pointwise(a, export.head.w, export.head.b)
    gate = head_acc > 0
    counts = gate.sum(axis=1).astype(np.int64)
    cls = export.classifier
    logits = cls.w @ counts + cls.b
    out.update({"head_acc": head_acc, "gate": gate, "gate_counts": counts,
                "logits": logits, "class": int(np.argmax(logits))})
    return out


def nonzero_products(model: ExportLike, out: dict) -> dict[str, int]:
    """Per layer, the products whose activation operand is non-zero ('same' padding excluded):
    what a zero-gating MAC array issues, whatever it skips."""
    export = as_export(model)
    T = export.frames
    counts = {}
    a = out["input"]
    for i, block in enumerate(export.blocks, start=1):
        h = block.kernel // 2
        u = np.arange(T)
        reach = np.minimum(T - 1, u + h) - np.maximum(0, u - h) + 1   # outputs an input meets
        counts[f"block{i}.dw"] = int(((a != 0) * reach).sum())
        counts[f"block{i}.pw"] = int((out[f"block{i}.dw"] != 0).sum()) * block.c_out
        if block.has_res:
            counts[f"block{i}.res"] = int((a != 0).sum()) * block.c_out
        a = out[f"block{i}.out"]
    counts["head"] = int((a != 0).sum()) * export.features
    return counts


def run_batch(model: ExportLike, xs) -> dict:
    """Logits [N, 12], classes [N], gate counts [N, 32] and the frames whose 32 gate bits
    are all zero (what the classifier skips) [N] for a batch of clips."""
    export = as_export(model)
    results = [run(export, x) for x in xs]
    return {"logits": np.stack([r["logits"] for r in results]),
            "classes": np.array([r["class"] for r in results]),
            "gate_counts": np.stack([r["gate_counts"] for r in results]),
            "frames_off": np.array([int((~r["gate"].astype(bool).any(axis=0)).sum())
                                    for r in results])}
