"""Worst-case accumulator ranges from the integer weights and the input ranges."""
from __future__ import annotations

import numpy as np


def _signed_bits(lo: int, hi: int) -> int:
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


def dot_range(weight, lo: int, hi: int, bias=None) -> tuple[np.ndarray, np.ndarray]:
    """Per output row, the min and max of sum_j w[j] * x[j] (+ bias) over x[j] in [lo, hi]."""
    w = np.asarray(weight, dtype=np.int64)
    top = np.maximum(w * lo, w * hi).sum(axis=1)
    bottom = np.minimum(w * lo, w * hi).sum(axis=1)
    if bias is not None:
        b = np.asarray(bias, dtype=np.int64)
        top, bottom = top + b, bottom + b
    return bottom, top


def acc_bits(weight, lo: int, hi: int, bias=None) -> int:
    bottom, top = dot_range(weight, lo, hi, bias)
    return _signed_bits(int(bottom.min()), int(top.max()))


def annotate_acc_bits(model: dict) -> dict:
    """Fill in acc_bits of every layer from its weights and its input's range.

    Works on the JSON document, in place: it completes the test stimuli, which are built and
    tuned as documents (quant/random_export.py, sim/stimuli.py), before `validate` /
    `Export.from_dict`, which require acc_bits. quant/export.py calls `acc_bits` per layer."""
    lo, hi = model["input"]["lo"], model["input"]["hi"]
    for block in model["blocks"]:
        dw = block["dw"]
        dw["acc_bits"] = acc_bits(dw["weight"], lo, hi)
        for part in ("pw",):
            layer = block[part]
            layer["acc_bits"] = acc_bits(layer["weight"], dw["lo"], dw["hi"], layer["bias"])
        if block.get("res") is not None:
            res = block["res"]
            res["acc_bits"] = acc_bits(res["weight"], lo, hi, res["bias"])
            lo, hi = block["add"]["lo"], block["add"]["hi"]
        else:
            lo, hi = block["pw"]["lo"], block["pw"]["hi"]
    head = model["head"]
    head["acc_bits"] = acc_bits(head["weight"], lo, hi, head["bias"])
    cls = model["classifier"]
    cls["acc_bits"] = acc_bits(cls["weight"], 0, model["frames"], cls["bias"])
    return model
