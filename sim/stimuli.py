"""Stimuli for the benches: exports with chosen gate behaviour and input clips.

`random_export` weights give saturated gate counts (0 or 101) and often dead blocks, which
would hide datapath errors; `balanced_export` re-centres the biases on calibration clips
so that about half of every layer's outputs are non-zero and the gates open part of the
time. `gated_export(..., "closed"/"open")` forces every gate shut (all frames skipped by the
classifier) or open, for any input, from the worst-case head ranges.

The exports are built and tuned as dicts (the JSON document: their biases and shifts are
edited in place, then `annotate_acc_bits` recomputes the widths); the consumers convert
them to the typed `Export` (quant/export_types.py) when they read them.
"""
from __future__ import annotations

import numpy as np

from sparknet_hw.quant import golden
from sparknet_hw.quant.accumulators import annotate_acc_bits, dot_range
from sparknet_hw.quant.export_types import ExportLike, as_export
from sparknet_hw.quant.random_export import random_export



def _fit_bias(acc_no_bias: np.ndarray, quantile: float, limit: int) -> list[int]:
    """Bias per output row so that `quantile` of the row's accumulators end up <= 0."""
    b = -np.quantile(acc_no_bias, quantile, axis=1)
    return np.clip(np.round(b), -limit, limit).astype(np.int64).tolist()


def _fit_shift(acc: np.ndarray, hi: int, axis=None) -> np.ndarray:
    """Right shift that maps the 99th percentile of |acc| to about hi / 2."""
    q = np.quantile(np.abs(acc), 0.99, axis=axis)
    return np.clip(np.round(np.log2(np.maximum(q, 1) / max(hi / 2, 1))), 0, 24).astype(np.int64)


def balanced_export(C: int, weight_bits: int = 8, act_bits: int = 8, seed: int = 0,
                    calib=None) -> dict:
    """A random export whose shifts and biases are fitted on calibration clips: every layer
    uses its output range and about half of the block outputs are zero; gates open
    10..70 % of the time."""
    model = random_export(C, weight_bits, act_bits, seed=seed)
    if calib is None:
        calib = random_clips(model, 3, np.random.default_rng(seed + 1000), "uniform")
    limit = 2 ** (weight_bits + act_bits + 6)

    def run_all():
        annotate_acc_bits(model)
        return [golden.run(model, x) for x in calib]

    for i, block in enumerate(model["blocks"], start=1):
        parts = ["pw"] + (["res"] if block.get("res") is not None else [])
        outs = run_all()
        acc = np.concatenate([o[f"block{i}.dw_acc"] for o in outs], axis=1)
        block["dw"]["shift"] = _fit_shift(acc, block["dw"]["hi"], axis=1).tolist()
        for part in parts:
            block[part]["bias"] = [0] * block["c_out"]
        outs = run_all()
        for part in parts:
            acc = np.concatenate([o[f"block{i}.{part}_acc"] for o in outs], axis=1)
            block[part]["bias"] = _fit_bias(acc, 0.5, limit)
            centred = acc + np.asarray(block[part]["bias"])[:, None]
            block[part]["shift"] = int(_fit_shift(centred, block[part]["hi"]))
    head = model["head"]
    head["bias"] = [0] * len(head["bias"])
    outs = run_all()
    acc = np.concatenate([o["head_acc"] for o in outs], axis=1)
    rng = np.random.default_rng(seed)
    q = rng.uniform(0.3, 0.9, size=acc.shape[0])      # gates open 10..70 % of the time
    head["bias"] = [int(np.clip(-np.round(np.quantile(acc[f], q[f])), -limit, limit))
                    for f in range(acc.shape[0])]
    model["source"] = {"kind": "balanced-random", "seed": seed}
    return annotate_acc_bits(model)


def gated_export(C: int, mode: str, weight_bits: int = 8, act_bits: int = 8, seed: int = 0) -> dict:
    """Every gate closed ("closed") or open ("open") for any input."""
    model = balanced_export(C, weight_bits, act_bits, seed)
    last = model["blocks"][-1]["add"]
    head = model["head"]
    w = np.asarray(head["weight"], dtype=np.int64)
    bottom, top = dot_range(w, last["lo"], last["hi"])
    if mode == "closed":
        head["bias"] = (-top).tolist()           # acc <= 0 always
    elif mode == "open":
        head["bias"] = (1 - bottom).tolist()     # acc >= 1 always
    else:
        raise ValueError(mode)
    model["source"] = {"kind": f"gates-{mode}", "seed": seed}
    return annotate_acc_bits(model)


def quiet_export(C: int, weight_bits: int = 8, act_bits: int = 8, seed: int = 0) -> dict:
    """A balanced export whose block 1 has no 1x1 bias, so frames of zero input reach block 2
    as zero frames (with the "burst" clips: a long all-zero tail)."""
    model = balanced_export(C, weight_bits, act_bits, seed)
    first = model["blocks"][0]
    first["pw"]["bias"] = [0] * first["c_out"]
    model["source"] = {"kind": "quiet-block1", "seed": seed}
    return annotate_acc_bits(model)


def stress_export(C: int, seed: int, frames: int = 32, weight_bits: int = 8,
                  act_bits: int = 8) -> dict:
    """A random export at the corners the trained ones rarely reach: shifts from negative (a
    left shift) to wide, weight rows and depthwise channels all zero, biases at the edge of
    their range (outputs pinned at the clamp), and `frames` frames (T is a parameter of the
    hardware; a short T keeps a simulation fast). Accumulator widths are recomputed for the
    worst case of the new values, so the worst-case inputs drive them to their limits."""
    rng = np.random.default_rng(seed)
    model = random_export(C, weight_bits, act_bits, seed=seed)
    model["frames"] = int(frames)
    wide = weight_bits + act_bits

    def zero_rows(weight, p=0.15):
        return [[0] * len(row) if rng.random() < p else row for row in weight]

    def edge_biases(bias, limit):
        return [int(rng.choice([-limit, limit])) if rng.random() < 0.2 else int(v) for v in bias]

    for block in model["blocks"]:
        dw = block["dw"]
        dw["weight"] = zero_rows(dw["weight"])
        dw["shift"] = rng.integers(-2, weight_bits + 5, size=len(dw["shift"])).tolist()
        for part in ("pw", "res"):
            layer = block.get(part)
            if layer is None:
                continue
            layer["weight"] = zero_rows(layer["weight"])
            layer["bias"] = edge_biases(layer["bias"], 2 ** (wide - 1))
            layer["shift"] = int(rng.integers(-1, wide))
        if block.get("add") is not None:
            block["add"]["shift"] = int(rng.integers(-1, 3))
    head = model["head"]
    head["weight"] = zero_rows(head["weight"])
    head["bias"] = edge_biases(head["bias"], 2 ** wide)
    model["classifier"]["bias"] = edge_biases(model["classifier"]["bias"], 2 ** 15)
    model["source"] = {"kind": "stress", "seed": seed, "frames": int(frames)}
    return annotate_acc_bits(model)


BURST_FRAMES = 4


def random_clips(model: ExportLike, n: int, rng, kind: str = "uniform") -> np.ndarray:
    export = as_export(model)
    F, T = export.features, export.frames
    lo, hi = export.input.lo, export.input.hi
    if kind == "uniform":
        return rng.integers(lo, hi + 1, size=(n, F, T))
    if kind == "zeros":
        return np.zeros((n, F, T), dtype=np.int64)
    if kind == "max":
        return np.full((n, F, T), hi, dtype=np.int64)
    if kind == "min":
        return np.full((n, F, T), lo, dtype=np.int64)
    if kind == "extremes":
        return np.where(rng.random((n, F, T)) < 0.5, lo, hi).astype(np.int64)
    if kind == "burst":          # uniform in the first BURST_FRAMES frames, zero after
        x = rng.integers(lo, hi + 1, size=(n, F, T))
        x[:, :, BURST_FRAMES:] = 0
        return x
    if kind == "sparse":
        x = rng.integers(lo, hi + 1, size=(n, F, T))
        return np.where(rng.random((n, F, T)) < 0.7, 0, x)
    raise ValueError(kind)


def real_clips(model: dict, n: int | None = None) -> np.ndarray | None:
    """The shipped real test clips (float MFCC), quantized with the export's input frac
    (sparknet_hw.clips); None when the package ships none."""
    from sparknet_hw.clips import shipped_clips
    batch = shipped_clips(model, n)
    return None if batch is None else batch.features


def calibrated_export(C: int, weight_bits: int = 8, act_bits: int = 8, seed: int = 1) -> dict:
    """balanced_export calibrated on the shipped real clips when they exist (the tests' and
    the CLI's default stand-in until trained exports arrive)."""
    model = balanced_export(C, weight_bits, act_bits, seed=seed)
    calib = real_clips(model, 3)
    if calib is None:
        return model
    return balanced_export(C, weight_bits, act_bits, seed=seed, calib=calib)
