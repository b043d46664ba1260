"""Random (export, input) pairs through the generated Verilog (Verilator), against the golden
model (every logit, class, gate count) and the schedule model (every counter), exactly.

The exports are `stress_export`s: negative and wide shifts, all-zero weight rows and depthwise
channels, biases at the edge of their range, accumulators sized for their worst case, and a
short T (32 frames) so that one inference is ~3.7k cycles. Inputs mix uniform, +-max extremes
(the worst-case accumulators), sparse, all-max and all-min clips.

Default run: one C=4 export, 200 inputs. `pytest -m slow`: 48 exports (C = 4, 8, 16, 32,
weight/activation bits 4..8) x 210 inputs = 10,080 pairs. Seeds: SEED_BASE + case index;
the bench's own seed (gaps, backpressure) is printed by run_sim.
"""
import numpy as np
import pytest

from sparknet_hw.sim.runner import run_sim
from sparknet_hw.sim.stimuli import random_clips, stress_export

pytestmark = pytest.mark.sim

SEED_BASE = 7000
KINDS = ("uniform", "extremes", "sparse", "max", "min")


def inputs(model, n, seed):
    rng = np.random.default_rng(seed)
    per_kind = [n * 3 // 10, n * 3 // 10, n * 3 // 10]
    counts = per_kind + [(n - sum(per_kind)) // 2, n - sum(per_kind) - (n - sum(per_kind)) // 2]
    return np.concatenate([random_clips(model, k, rng, kind) for k, kind in zip(counts, KINDS)])


def run_case(C, wb, ab, seed, n):
    model = stress_export(C, seed=seed, weight_bits=wb, act_bits=ab)
    shifts = [s for b in model["blocks"] for s in b["dw"]["shift"]]
    print(f"stress export C={C} w{wb}a{ab} seed {seed}: shifts {min(shifts)}..{max(shifts)}")
    rep = run_sim(model, inputs(model, n, seed), "verilator")
    assert rep["inferences"] == n
    assert rep["mismatches"] == 0, rep["mismatch_details"]
    assert rep["counter_errors"] == [], rep["counter_errors"][:10]
    return model


def test_random_exports_default():
    model = run_case(4, 8, 8, SEED_BASE, 200)
    # the corners are really there: a left shift, a zero row, a bias at its edge
    assert min(s for b in model["blocks"] for s in b["dw"]["shift"]) < 0
    assert any(not any(row) for b in model["blocks"] for row in b["pw"]["weight"])
    assert any(abs(v) == 2 ** 15 for b in model["blocks"] for v in b["pw"]["bias"])


SLOW_CASES = [(C, wb, ab) for C in (4, 8, 16, 32) for wb, ab in
              ((8, 8), (4, 4), (6, 8), (8, 6), (5, 7), (7, 5), (4, 8), (8, 4), (6, 6),
               (5, 5), (7, 7), (4, 6))]


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(SLOW_CASES)))
def test_random_exports_regression(index):
    C, wb, ab = SLOW_CASES[index]
    run_case(C, wb, ab, SEED_BASE + 1 + index, 210)
