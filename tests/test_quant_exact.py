"""The integer golden model reproduces the Brevitas fixed-point model bit for bit.

For every width C and bit widths 8 and 4, a small model is built here (random float SparkNet,
BN folded, calibrated, a few QAT steps), exported, and run on random clips, random extremes,
all-max / all-min / zero inputs and 16 shipped real corpus clips: the golden
model's logits equal the Brevitas model's integer logits exactly, and so does every
intermediate tensor. 8 models x 146 inputs = 1168 inputs.
"""
import functools
import os

import numpy as np
import pytest
import torch

from sparknet_hw.clips import shipped_clips
from sparknet_hw.quant import golden
from sparknet_hw.quant.export import export_model, float_exact_bits, self_check_inputs, verify
from sparknet_hw.quant.features import quantize_features
from sparknet_hw.quant.testing import random_features, small_qat_model


CASES = [(C, bits) for C in (4, 8, 16, 32) for bits in (8, 4)]
_models = {}


def model_and_export(C, bits):
    if (C, bits) not in _models:
        model = small_qat_model(C, bits, bits, seed=10 * C + bits, train_steps=3)
        _models[(C, bits)] = (model, export_model(model))
    return _models[(C, bits)]


@functools.lru_cache(maxsize=None)
def real_features(n):
    """Real float MFCC clips of the offline corpus's test split, shipped with the package."""
    return shipped_clips(n=n).features                       # float32 MFCC [n, 32, 101]


def inputs_for(export, seed):
    step = 2.0 ** -export.input.fracs.astype(np.float64)[:, None]
    lo, hi = export.input.lo * step, export.input.hi * step
    x = [self_check_inputs(export, n_random=48, seed=seed),              # 51 incl. min/max/0
         random_features(40, seed=seed).numpy() * (hi / 16),               # MFCC-like
         np.where(np.random.default_rng(seed).random((24, 32, 101)) < 0.5, lo, hi),  # extremes
         np.random.default_rng(seed + 1).integers(export.input.lo, export.input.hi + 1,
                                                  size=(15, 32, 101)) * step]
    x.append(real_features(16))
    return np.concatenate([np.asarray(a, dtype=np.float32) for a in x])


@pytest.mark.parametrize("C,bits", CASES)
def test_golden_equals_brevitas_exactly(C, bits):
    model, export = model_and_export(C, bits)
    assert export.weight_bits == export.act_bits == bits
    assert float_exact_bits(export) < 24 and export.source["float_exact"]
    x = inputs_for(export, seed=C + bits)
    assert len(x) >= 130
    # logits on every input
    want = model.integer_logits(torch.from_numpy(x)).numpy()
    got = golden.run_batch(export, quantize_features(x, export))
    assert np.array_equal(got["logits"], want)
    # the check is not vacuous: gates switch and the logits differ between clips
    counts = got["gate_counts"]
    assert ((counts > 0) & (counts < export.frames)).mean() > 0.3
    assert len({tuple(r) for r in got["logits"].tolist()}) > len(x) // 2
    # every intermediate tensor too, on a subset
    full = verify(model, export, x[::4], full=True)
    assert full["mismatches"] == 0, full


def test_eight_bit_input_with_four_bit_activations():
    model = small_qat_model(16, 4, 4, seed=7, train_steps=3, input_bits=8)
    export = export_model(model)
    assert (export.input.lo, export.input.hi, export.act_bits) == (-128, 127, 4)
    assert export.blocks[0].dw.hi == 7
    x = inputs_for(export, seed=11)
    assert verify(model, export, x)["mismatches"] == 0
    assert verify(model, export, x[::4], full=True)["mismatches"] == 0


@pytest.mark.parametrize("C,bits", [(8, 8), (16, 4)])
def test_input_quantization_matches_brevitas(C, bits):
    model, export = model_and_export(C, bits)
    x = inputs_for(export, seed=5)[:64]
    # half-way points between two integers must round to even
    fracs = np.asarray(export.input.frac)
    assert len(set(fracs.tolist())) > 1            # a different frac per feature is exercised
    step = 2.0 ** -fracs.astype(np.float64)[:, None]
    x[0] = (np.arange(32 * 101).reshape(32, 101) % 9 - 4 + 0.5) * step
    want = model.integer_trace(torch.from_numpy(x))["input"].numpy()
    assert np.array_equal(quantize_features(x, export), want)
    assert quantize_features(x, export).dtype == np.int8


def test_one_lsb_change_in_the_export_is_caught():
    model, export = model_and_export(8, 8)
    x = inputs_for(export, seed=3)[:48]
    assert verify(model, export, x)["mismatches"] == 0
    counts = golden.run_batch(export, quantize_features(x, export))["gate_counts"]
    f = int(np.argmax((counts > 0).sum(axis=0)))            # a gate that opens on some clip
    places = [("classifier", lambda e: e["classifier"]["weight"][3], f),
              ("head", lambda e: e["head"]["weight"][f], 0),
              ("block1.dw", lambda e: e["blocks"][0]["dw"]["weight"][0], 5),
              ("block4.pw", lambda e: e["blocks"][3]["pw"]["weight"][1], 2),
              ("block2.res", lambda e: e["blocks"][1]["res"]["weight"][0], 0)]
    for name, row_of, j in places:
        changed = export.to_dict()          # a changed copy: the JSON document, edited
        row = row_of(changed)
        row[j] += 1 if row[j] < 2 ** (export.weight_bits - 1) - 1 else -1
        logits_only = verify(model, changed, x)
        full = verify(model, changed, x, full=True)
        assert full["mismatches"] > 0, name
        if name in ("classifier", "head"):
            assert logits_only["mismatches"] > 0, name


def test_saved_and_reloaded_checkpoint_exports_the_same(tmp_path):
    from sparknet_hw.quant.qat import save_qat_checkpoint
    from sparknet_hw.quant.qat_model import load_qat_checkpoint
    model, export = model_and_export(4, 4)
    path = save_qat_checkpoint(tmp_path / "q.pt", model)
    again = export_model(path)
    assert again == export                  # `source` takes no part in the comparison
    x = torch.from_numpy(inputs_for(export, seed=1)[:32])
    assert torch.equal(load_qat_checkpoint(path).integer_logits(x), model.integer_logits(x))


@pytest.mark.slow      # 200,000 inputs, ~7 CPU-minutes
@pytest.mark.parametrize("C", [4, 8, 16, 32])
def test_golden_equals_brevitas_exhaustive(C):
    """Every weight/activation width pair 4..8, 2,000 inputs per model, full traces on 200."""
    for wb in range(4, 9):
        for ab in range(4, 9):
            model = small_qat_model(C, wb, ab, seed=C * 100 + wb * 10 + ab, train_steps=5)
            export = export_model(model)
            x = np.concatenate([inputs_for(export, seed=s) for s in range(15)])[:2000]
            assert verify(model, export, x)["mismatches"] == 0, (C, wb, ab)
            assert verify(model, export, x[::10], full=True)["mismatches"] == 0, (C, wb, ab)
