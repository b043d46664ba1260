"""acc_bits in the export covers every value each accumulator can take.

For every layer, the worst-case input is driven through the golden model's own primitives:
the input is `hi` where the weight is positive and `lo` where it is negative (maximum) or
the reverse (minimum), for every output row. The accumulators reach exactly the declared
bounds (so the bound is tight) and fit in acc_bits signed bits; with one bit fewer they would
not (so acc_bits is the least width). The whole network on extreme inputs stays inside too.
"""
import numpy as np
import pytest

from sparknet_hw.quant import golden
from sparknet_hw.quant.accumulators import dot_range
from sparknet_hw.quant.export import export_model, self_check_inputs
from sparknet_hw.quant.export_types import as_export
from sparknet_hw.quant.features import quantize_features
from sparknet_hw.quant.random_export import random_export
from sparknet_hw.quant.testing import small_qat_model


def fits(values, bits):
    return values.min() >= -(1 << (bits - 1)) and values.max() <= (1 << (bits - 1)) - 1


def layers(export):
    """(name, kind, weight, bias, input lo, input hi, acc_bits) for every accumulator."""
    lo, hi = export.input.lo, export.input.hi
    for i, block in enumerate(export.blocks, start=1):
        dw, pw, res = block.dw, block.pw, block.res
        yield f"block{i}.dw", "dw", dw.weight, None, lo, hi, dw.acc_bits
        yield f"block{i}.pw", "pw", pw.weight, pw.bias, dw.lo, dw.hi, pw.acc_bits
        if res is not None:
            yield f"block{i}.res", "pw", res.weight, res.bias, lo, hi, res.acc_bits
            lo, hi = block.add.lo, block.add.hi
        else:
            lo, hi = pw.lo, pw.hi
    head = export.head
    yield "head", "pw", head.weight, head.bias, lo, hi, head.acc_bits
    cls = export.classifier
    yield "classifier", "linear", cls.weight, cls.bias, 0, export.frames, cls.acc_bits


def worst_case_accumulators(kind, weight, bias, lo, hi, frames):
    """Drive the max- and min-input of every output row; return (max accs, min accs)."""
    w = np.asarray(weight, dtype=np.int64)
    rows, cols = w.shape
    results = []
    for sign in (1, -1):
        if kind == "dw":
            # channel c's kernel window at frame t0 sees hi where w > 0 (max) or lo (min)
            t0 = frames // 2
            a = np.zeros((rows, frames), dtype=np.int64)
            window = np.where(sign * w > 0, hi, lo)
            a[:, t0 - cols // 2:t0 - cols // 2 + cols] = window
            results.append(golden.depthwise(a, w)[:, t0])
        elif kind == "pw":
            # output row o gets its own frame o with the input column that drives it
            a = np.where(sign * w.T > 0, hi, lo)            # [cols, rows]: frame o for row o
            acc = golden.pointwise(a, w, np.asarray(bias, dtype=np.int64))
            results.append(np.diag(acc))
        else:
            counts = np.where(sign * w > 0, hi, lo)          # [rows, cols]: one count vector per row
            results.append((w * counts).sum(axis=1) + np.asarray(bias, dtype=np.int64))
    return results


EXPORTS = {
    "qat C=8 W8A8": lambda: export_model(small_qat_model(8, 8, 8, seed=1, train_steps=2)),
    "qat C=32 W4A4": lambda: export_model(small_qat_model(32, 4, 4, seed=2)),
    "qat C=4 W8A4": lambda: export_model(small_qat_model(4, 8, 4, seed=3)),
    "random C=16 W8A8": lambda: as_export(random_export(16, seed=4)),
    "random C=32 W4A6": lambda: as_export(random_export(32, 4, 6, seed=5)),
}


@pytest.mark.parametrize("name", list(EXPORTS))
def test_worst_case_inputs_reach_and_respect_acc_bits(name):
    export = EXPORTS[name]()
    for layer, kind, weight, bias, lo, hi, bits in layers(export):
        top, bottom = worst_case_accumulators(kind, weight, bias, lo, hi, export.frames)
        want_bottom, want_top = dot_range(weight, lo, hi, bias)
        assert np.array_equal(top, want_top) and np.array_equal(bottom, want_bottom), layer
        both = np.concatenate([top, bottom])
        assert fits(both, bits), f"{layer}: worst case {both.min()}..{both.max()} > {bits} bits"
        assert not fits(both, bits - 1), f"{layer}: acc_bits {bits} is not the least width"


def test_extreme_network_inputs_stay_inside_acc_bits():
    export = export_model(small_qat_model(16, 8, 8, seed=6))
    x = quantize_features(self_check_inputs(export, n_random=32), export)
    names = {f"block{i}.{p}_acc": getattr(export.blocks[i - 1], p).acc_bits
             for i in range(1, 5) for p in ("dw", "pw", "res")
             if getattr(export.blocks[i - 1], p) is not None}
    names["head_acc"] = export.head.acc_bits
    for clip in x:
        out = golden.run(export, clip)
        for key, bits in names.items():
            assert fits(out[key], bits), key
        assert fits(out["logits"], export.classifier.acc_bits)
