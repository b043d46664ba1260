"""The integer golden model's primitives, against arithmetic done another way."""
from fractions import Fraction

import numpy as np
import pytest

from sparknet_hw.quant import golden
from sparknet_hw.quant.random_export import random_export


def reference_requant(x, shift, lo, hi):
    if shift <= 0:
        v = x * 2 ** (-shift)
    else:
        f = Fraction(x, 2 ** shift)
        v = round(f)  # Python's round on Fraction is half-to-even
    return max(lo, min(hi, v))


def test_requant_half_to_even_matches_exact_rationals():
    rng = np.random.default_rng(7)
    xs = np.concatenate([rng.integers(-5000, 5000, 2000), np.arange(-40, 41)])
    for shift in (-2, 0, 1, 2, 3, 7):
        got = golden.requant(xs, shift, -128, 127)
        want = [reference_requant(int(x), shift, -128, 127) for x in xs]
        assert got.tolist() == want


def test_golden_matches_float_reference_on_random_export():
    model = random_export(8, seed=3)
    x = np.random.default_rng(3).integers(-128, 128, (32, 101))
    out = golden.run(model, x)
    # depthwise by explicit loops
    w = np.array(model["blocks"][0]["dw"]["weight"])
    acc = np.zeros((32, 101), dtype=np.int64)
    for c in range(32):
        for t in range(101):
            for k in range(11):
                u = t + k - 5
                if 0 <= u < 101:
                    acc[c, t] += w[c, k] * x[c, u]
    assert np.array_equal(out["block1.dw_acc"], acc)
    counts = out["gate"].sum(axis=1)
    assert np.array_equal(out["gate_counts"], counts)
    wc = np.array(model["classifier"]["weight"])
    assert out["logits"].tolist() == (wc @ counts + np.array(model["classifier"]["bias"])).tolist()


def test_golden_rejects_bad_features():
    model = random_export(4)
    with pytest.raises(golden.FeatureError, match="shape"):
        golden.run(model, np.zeros((32, 100), dtype=np.int8))
    with pytest.raises(golden.FeatureError, match="dtype"):
        golden.run(model, np.zeros((32, 101), dtype=np.float32))


def test_nonzero_products_count_every_product_with_a_nonzero_activation():
    model = random_export(4, seed=5)
    rng = np.random.default_rng(6)
    x = rng.integers(-3, 4, size=(model["features"], model["frames"]))
    x[:, 40:60] = 0
    out = golden.run(model, x)
    T = model["frames"]
    want = {}
    a = out["input"]
    for i, block in enumerate(model["blocks"], start=1):
        K, h = block["kernel"], block["kernel"] // 2
        n = 0
        for c in range(a.shape[0]):          # one product per (channel, output frame, tap)
            for s in range(T):
                for k in range(K):
                    u = s + k - h
                    n += 0 <= u < T and a[c, u] != 0
        want[f"block{i}.dw"] = n
        d = out[f"block{i}.dw"]
        want[f"block{i}.pw"] = sum(int(d[c, t] != 0) for c in range(d.shape[0])
                                   for t in range(T) for _ in range(block["c_out"]))
        if block.get("res") is not None:
            want[f"block{i}.res"] = sum(int(a[c, t] != 0) for c in range(a.shape[0])
                                        for t in range(T) for _ in range(block["c_out"]))
        a = out[f"block{i}.out"]
    want["head"] = sum(int(a[c, t] != 0) for c in range(a.shape[0]) for t in range(T)) * 32
    assert golden.nonzero_products(model, out) == want
