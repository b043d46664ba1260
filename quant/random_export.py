"""A random but well-formed export, for testing hardware and golden model without training."""
from __future__ import annotations

import numpy as np

from sparknet_hw.model import BLOCKS, N_CLASSES, N_FEATURES, N_FRAMES

from .export_format import FORMAT, VERSION
from .accumulators import annotate_acc_bits

LABELS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
          "_unknown_", "_silence_"]


def random_export(C: int, weight_bits: int = 8, act_bits: int = 8, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    wmax = 2 ** (weight_bits - 1) - 1
    s_lo, s_hi = -(2 ** (act_bits - 1)), 2 ** (act_bits - 1) - 1
    u_hi = 2 ** act_bits - 1

    def w(*shape):
        return rng.integers(-wmax, wmax + 1, size=shape).tolist()

    def b(n, mag):
        return rng.integers(-mag, mag + 1, size=n).tolist()

    blocks = []
    c_in = N_FEATURES
    for kernel, residual in BLOCKS:
        block = {"kernel": kernel, "c_in": c_in, "c_out": C,
                 "dw": {"weight": w(c_in, kernel),
                        "shift": rng.integers(weight_bits - 1, weight_bits + 4, size=c_in).tolist(),
                        "lo": s_lo, "hi": s_hi},
                 "pw": {"weight": w(C, c_in), "bias": b(C, 2 ** (weight_bits + act_bits - 2)),
                        "shift": int(weight_bits + 1), "lo": s_lo if residual else 0,
                        "hi": s_hi if residual else u_hi},
                 "res": None, "add": None, "in_frac": 0, "out_frac": 0}
        if residual:
            block["res"] = {"weight": w(C, c_in), "bias": b(C, 2 ** (weight_bits + act_bits - 2)),
                            "shift": int(weight_bits + 1), "lo": s_lo, "hi": s_hi}
            block["add"] = {"shift": 1, "lo": 0, "hi": u_hi}
        blocks.append(block)
        c_in = C
    model = {
        "format": FORMAT, "version": VERSION, "C": C, "features": N_FEATURES, "frames": N_FRAMES,
        "labels": LABELS[:N_CLASSES], "weight_bits": weight_bits, "act_bits": act_bits,
        "input": {"frac": [3] * N_FEATURES, "lo": s_lo, "hi": s_hi},
        "blocks": blocks,
        "head": {"weight": w(N_FEATURES, C), "bias": b(N_FEATURES, 2 ** (weight_bits + act_bits))},
        "classifier": {"weight": w(N_CLASSES, N_FEATURES), "bias": b(N_CLASSES, 2 ** 10),
                       "out_frac": 0},
        "source": {"kind": "random", "seed": seed},
    }
    return annotate_acc_bits(model)
