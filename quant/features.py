"""Float MFCC -> the integer input of the golden model and the hardware.

x0[f, t] = clamp(round_half_to_even(x[f, t] * 2**input.frac[f]), input.lo, input.hi),
computed in float32 exactly as the QAT model does (its fixed per-feature power-of-two gain,
then the per-tensor input quantizer; multiplying by a power of two is exact), so the result
equals the QAT model's input integers bit for bit.
"""
from __future__ import annotations

import numpy as np

from .export_types import ExportLike, as_export
from .golden import FeatureError


def quantize_features(features, export: ExportLike) -> np.ndarray:
    """float features [..., 32, 101] -> int8 (int16 if the input range needs it), same shape."""
    export = as_export(export)
    x = np.asarray(features)
    shape = (export.features, export.frames)
    if x.ndim < 2 or tuple(x.shape[-2:]) != shape:
        raise FeatureError(f"features have shape {x.shape}, expected [..., {shape[0]}, "
                           f"{shape[1]}] (features x frames)")
    if not np.issubdtype(x.dtype, np.floating):
        raise FeatureError(f"features have dtype {x.dtype}; quantize_features takes float MFCC "
                           f"features (integer features are already quantized)")
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise FeatureError("features contain NaN or infinity")
    inp = export.input
    gain = np.exp2(inp.fracs.astype(np.float32))[:, None]
    scaled = x * gain                              # exact: powers of two
    q = np.clip(np.rint(scaled), inp.lo, inp.hi)   # np.rint rounds half to even
    dtype = np.int8 if -128 <= inp.lo and inp.hi <= 127 else np.int16
    return q.astype(dtype)


def as_golden_input(features, export: ExportLike) -> np.ndarray:
    """Float features are quantized; integer features are checked against the input range.
    Returns int64 [N, 32, 101] (a single [32, 101] clip becomes N = 1)."""
    export = as_export(export)
    x = np.asarray(features)
    if np.issubdtype(x.dtype, np.floating):
        q = quantize_features(x, export)
    elif np.issubdtype(x.dtype, np.integer):
        q = x
        shape = (export.features, export.frames)
        if x.ndim < 2 or tuple(x.shape[-2:]) != shape:
            raise FeatureError(f"features have shape {x.shape}, expected [..., {shape[0]}, "
                               f"{shape[1]}] (features x frames)")
        lo, hi = export.input.lo, export.input.hi
        if x.size and (x.min() < lo or x.max() > hi):
            raise FeatureError(f"integer features span [{x.min()}, {x.max()}], outside the "
                               f"input range [{lo}, {hi}] of this export")
    else:
        raise FeatureError(f"features have dtype {x.dtype}; expected float MFCC or integer "
                           f"(already quantized) features")
    q = q.astype(np.int64)
    if q.ndim == 2:
        q = q[None]
    if q.ndim != 3:
        raise FeatureError(f"features have shape {x.shape}; expected [32, 101] or "
                           f"[N, 32, 101]")
    return q
