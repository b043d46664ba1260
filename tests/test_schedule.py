"""The schedule model (sim/schedule.py) predicts the accelerator's counters exactly: every
layer's cycles / issued / gated, the total cycles, frames_skipped and the classifier's busy
cycles, compared field by field with the records of the Amaranth-simulated top.

The Amaranth simulator is slow (~1 ms a cycle), so the default cases use the shipped C=4
export cut to T=32 frames (the same weights; T is a parameter of the generated hardware and 32
still holds the largest kernel, 29) plus one full-length (T=101) real clip; the full-length
matrix is marked slow (`pytest -m slow` runs it, a few minutes). Random inputs print their seed;
SPARKNET_SCHEDULE_SEED replaces every random case's seed.

Mutations: `test_comparison_names_the_mismatch` shows that a changed counter, FIFO depth or
skip mode is reported by name. Hand mutations of the RTL (made in a private copy of the package,
so that concurrent runs in the working tree never saw them; reverted) each made the default
cases fail, naming the fields:
  - rtl/counters.py, one extra cycle per layer run (run_c starts at ev_cyc + 1 on a layer
    change): 6 of 6 cases, every `layers.*.cycles`;
  - rtl/sequencer.py, no skipping on the residual segments (res_mask = cmask): 5 of 6 (not
    the one without skipping), `layers.block*.res.cycles`, `cycles` and the waits that move.
    Logits and issued MACs are unchanged: the golden scoreboard cannot see this one;
  - rtl/sequencer.py, always a Phase.IDLE cycle after the depthwise (d_ready ignored there):
    6 of 6, `layers.block*.pw.cycles` and `cycles`;
  - rtl/sequencer.py, one extra skipped product per all-zero depthwise word: the 4 cases that
    skip depthwise words, `layers.block*.dw.gated`;
  - rtl/top.py, hold one frame early (>= fifo_depth - 1): the 2 cases whose classifier
    lags, `layers.head.cycles` and `cycles`;
  - rtl/classifier.py, no overlap of a frame's last column add with the next handshake: the
    same 2 cases, `layers.head.cycles` and `cycles`;
  - rtl/classifier.py, an all-shut frame counted only right after a busy one: the case with
    skipped frames, `frames_skipped`.
  - sim/schedule.py, no START_LAG after a one-op depthwise step (the `n == 1` wait): the
    quiet case alone, `layers.block2.pw.cycles` and `cycles` (2 cycles short). Elsewhere d's
    readiness sets the start after such a step, so no other case can see this wait.
"""
from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import pytest

from sparknet_hw.rtl.config import HwConfig, build_plan, real_macs
from sparknet_hw.rtl.record import layer_names
from sparknet_hw.rtl.top import SparkNetAccelerator
from sparknet_hw.sim.amaranth_harness import run_top
from sparknet_hw.sim.schedule import compare, counters, cycle_budget, predict
from sparknet_hw.shipped import int8_export
from sparknet_hw.sim.stimuli import gated_export, quiet_export, random_clips, real_clips

SHORT_T = 32
CLIP_T = 101                 # the shipped real clips' length
SEED_ENV = "SPARKNET_SCHEDULE_SEED"


@lru_cache(maxsize=None)
def _shipped(C: int) -> str:
    return int8_export(C).read_text()


def export(C: int, frames: int | None = None, synthetic: str | None = None) -> dict:
    """The shipped export, or a synthetic one: every gate "open" or "closed", or "quiet"
    (block 1 without bias); optionally cut to fewer frames."""
    if synthetic == "quiet":
        model = quiet_export(C, seed=2)
    elif synthetic:
        model = gated_export(C, synthetic, seed=2)
    else:
        model = json.loads(_shipped(C))
    return dict(model, frames=frames) if frames else model


def clip(model: dict, kind: str, seed: int, index: int = 0) -> np.ndarray:
    """A real test clip (quantized with the full-length export, then cut) or a random one."""
    T = model["frames"]
    if kind == "real":
        full = dict(model, frames=CLIP_T)
        return real_clips(full, index + 1)[index, :, :T]
    seed = int(os.environ.get(SEED_ENV, seed))
    print(f"random '{kind}' clip, seed {seed} (set {SEED_ENV} to change)")
    return random_clips(model, 1, np.random.default_rng(seed), kind)[0]


@dataclass(frozen=True)
class Case:
    C: int
    frames: int | None
    config: HwConfig
    clips: tuple[str, ...]          # "real" or a random_clips kind
    synthetic: str | None = None    # instead of the shipped export (see export())
    seed: int = 1

    def model(self) -> dict:
        return export(self.C, self.frames, self.synthetic)

    def inputs(self, model: dict) -> np.ndarray:
        return np.stack([clip(model, kind, self.seed + i, index=i)
                         for i, kind in enumerate(self.clips)])


def cfg(pes: int, skip: str = "all", **kw) -> HwConfig:
    return HwConfig(rows=1, cols=pes, **kw).with_skip(skip)


FAST = {
    # frame-parallel depthwise; two clips in one run, so nothing carries over wrongly
    "all-frames-P4": Case(4, SHORT_T, cfg(4), ("real", "uniform")),
    "1x1-P2": Case(4, SHORT_T, cfg(2, "1x1"), ("sparse",)),
    "off-P4": Case(4, SHORT_T, cfg(4, "off"), ("real",)),
    "all-P1": Case(4, SHORT_T, cfg(1), ("real",)),
    "all-channels-P8": Case(4, SHORT_T, cfg(8, dw_frames=False), ("real",)),
    # a speech burst, then silence: block 2's depthwise steps become single ops while the
    # pointwise of the burst's last frames is still long (the `n == 1` wait of the model)
    "quiet-channels-C16-P16": Case(16, SHORT_T, cfg(16, dw_frames=False), ("burst",),
                                   "quiet"),
    # full length, the classifier's credits stall the head (hold) with a 2-word FIFO
    "all-frames-P16-fifo2-T101": Case(4, None, cfg(16, fifo_depth=2), ("real",)),
}
SLOW = {
    "off-P1-T101": Case(4, None, cfg(1, "off"), ("real",)),
    "all-frames-P2-T101": Case(4, None, cfg(2), ("real", "sparse")),
    "1x1-P4-T101": Case(4, None, cfg(4, "1x1"), ("extremes",)),
    "all-channels-P16-T101": Case(4, None, cfg(16, dw_frames=False), ("zeros",)),
    "gates-open-P16-fifo2-T101": Case(4, None, cfg(16, fifo_depth=2), ("uniform",), "open"),
    "gates-closed-P4-T101": Case(4, None, cfg(4), ("max",), "closed"),
    # C < P: the depthwise skips on words with padding lanes
    "C8-all-channels-P16-fifo3-T101": Case(8, None, cfg(16, dw_frames=False, fifo_depth=3),
                                           ("real",)),
}


@lru_cache(maxsize=None)
def hardware(name: str):
    """(model, inputs, predictions, records) of a case; the hardware runs once per session."""
    case = {**FAST, **SLOW}[name]
    model = case.model()
    x = case.inputs(model)
    preds = [predict(model, case.config, c) for c in x]
    records = run_top(SparkNetAccelerator(model, case.config), model, x,
                      max_cycles=cycle_budget(preds))
    assert len(records) == len(x), (f"{len(records)} of {len(x)} records within the budget "
                                    f"of {cycle_budget(preds):,} cycles")
    return model, x, preds, records


def check_case(name: str):
    model, _, preds, records = hardware(name)
    for i, (pred, rec) in enumerate(zip(preds, records)):
        mismatches = compare(pred, rec)
        assert not mismatches, f"clip {i}: " + "; ".join(mismatches)
        assert counters(pred) == counters(rec)
        assert pred["macs_issued"] == rec["macs_issued"]
        assert pred["macs_gated"] == rec["macs_gated"]
    return preds


@pytest.mark.parametrize("name", FAST)
def test_prediction_equals_hardware(name):
    check_case(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_prediction_equals_hardware_full_length(name):
    check_case(name)


def test_cases_exercise_the_waits():
    """The default cases wait for d (Phase.IDLE beyond the forced cycles) and stall the head
    on classifier credit, so both emulated waits are checked against the hardware."""
    _, _, preds, _ = hardware("all-frames-P16-fifo2-T101")
    assert preds[0]["timeline"]["head_stall_cycles"] > 0
    _, _, preds, _ = hardware("all-frames-P4")
    forced = 4 + 3 * 9     # step T of every pass; the first 1x1 after a frame-parallel tile
    assert preds[0]["timeline"]["idle_cycles"] > forced


def test_comparison_names_the_mismatch():
    """A changed counter, FIFO depth or skip mode in the model shows up by field name
    against a real hardware record (the same comparison catches RTL changes)."""
    name = "all-frames-P16-fifo2-T101"
    model, x, preds, records = hardware(name)
    rec = records[0]
    assert compare(preds[0], rec) == []

    for key in ("frames_skipped", "cycles"):
        bad = copy.deepcopy(preds[0])
        bad[key] += 1
        assert [m.split(":")[0] for m in compare(bad, rec)] == [key]
    for layer in ("block3.res", "classifier"):
        for what in ("cycles", "issued", "gated"):
            bad = copy.deepcopy(preds[0])
            bad["layers"][layer][what] -= 1
            assert [m.split(":")[0] for m in compare(bad, rec)] == [f"layers.{layer}.{what}"]

    # a deeper FIFO: fewer head stalls, so only the head's and the total cycles differ
    config = FAST[name].config
    deeper = predict(model, replace(config, fifo_depth=4), x[0])
    assert {m.split(":")[0] for m in compare(deeper, rec)} == {"cycles", "layers.head.cycles"}
    # no depthwise skipping: same MACs issued, more depthwise cycles
    mism = {m.split(":")[0] for m in compare(predict(model, config.with_skip("1x1"), x[0]), rec)}
    assert {f"layers.block{i}.dw.cycles" for i in range(1, 5)} <= mism
    assert not any(m.endswith((".issued", ".gated")) for m in mism)


# ------------------------------------------------------------------ model only (no simulator)

@pytest.mark.parametrize("skip", ["all", "1x1", "off"])
@pytest.mark.parametrize("pes", [1, 4, 16])
def test_prediction_accounts_for_every_product_and_cycle(skip, pes):
    model = export(8)
    x = clip(model, "real", 0)
    plan = build_plan(model, cfg(pes, skip))
    pred = predict(model, plan.config, x)
    real = real_macs(plan)
    names = layer_names(model)
    assert set(pred["layers"]) == set(names)
    for name in names:
        layer = pred["layers"][name]
        assert layer["issued"] + layer["gated"] == real[name], name
    # every sequencer cycle belongs to one PE layer; the classifier finishes after it
    tl = pred["timeline"]
    assert sum(pred["layers"][n]["cycles"] for n in names[:-1]) == tl["sequencer_cycles"]
    assert pred["cycles"] > tl["sequencer_cycles"]
    assert cycle_budget(pred) > pred["cycles"] + tl["input_words"]
    assert cycle_budget([pred, pred]) > 2 * pred["cycles"]


def test_dense_schedule_closed_form():
    """Without skipping, the walk is data independent: depthwise steps visit every valid tap
    of every lane group, 1x1 segments every channel; only the two forced waits remain."""
    model = export(4)
    pes = 4
    plan = build_plan(model, cfg(pes, "off"))
    T = plan.T
    dense = predict(model, plan.config, clip(model, "uniform", 5))
    for p in plan.passes[:-1]:
        h = p.half
        taps = sum(min(T - 1, s + h) - max(0, s - h) + 1 for s in range(T))
        names = [plan.layers[i].name for i in (p.l_dw, p.l_pw)]
        assert dense["layers"][names[0]]["cycles"] == p.gin * taps
        # the pointwise also gets its step-T Phase.IDLE cycle, and waits for d where the
        # depthwise and the 1x1 work of a step together are shorter than D_WAIT
        assert dense["layers"][names[1]]["cycles"] >= p.n_og * p.c_in * T + 1
        if p.has_res:
            assert dense["layers"][plan.layers[p.l_res].name]["cycles"] == p.n_og * plan.C * T
    head = plan.passes[-1]
    assert dense["layers"]["head"]["cycles"] >= 2 + head.n_og * plan.C * T
