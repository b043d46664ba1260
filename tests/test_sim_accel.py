"""cocotb benches of the generated Verilog (sim/), against quant/golden.py, bit-exactly.

Default subset (a few builds, a few minutes on 2 cores):
  verilator: C=8 int8 with every stimulus kind, a mid-inference reset, zero skipping off,
             C=4 w4a6, all gates closed, all gates open, a deliberately broken RTL
  icarus:    C=8 int8, zeros / max / random extremes / one real clip (~13 s a clip)
Full matrix: python -m pytest -m slow tests/test_sim_accel.py -n 2
  (C = 4, 8, 16, 32 x weight/act bits 4, 6, 8 x icarus, verilator). Seeds are printed;
  SPARKNET_SIM_SEED repeats a run.
"""
import os
import shutil

import numpy as np
import pytest

from sparknet_hw.rtl import HwConfig, build_plan
from sparknet_hw.sim.runner import SimError, run_sim
from sparknet_hw.sim.stimuli import calibrated_export, gated_export, random_clips, real_clips

pytestmark = pytest.mark.sim
needs_icarus = pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog missing")


def stimuli(model, rng, kinds=("zeros", "max", "min", "extremes", "uniform", "sparse"), real=2):
    clips = [random_clips(model, 1, rng, k)[0] for k in kinds]
    r = real_clips(model, real) if real else None
    if r is not None:
        clips += list(r)
    return np.stack(clips)


def export_for(C, wb, ab, seed=1):
    return calibrated_export(C, wb, ab, seed=seed)


def check(report):
    assert report["mismatches"] == 0, report["mismatch_details"]
    assert report["counter_errors"] == []
    for name, layer in report["layers"].items():
        if name != "classifier":                  # its gated count is derived from issued
            assert layer["macs_issued"] + layer["macs_gated"] == layer["macs_real"], name
    return report


def test_verilator_c8_int8_all_stimuli_and_reset():
    model = export_for(8, 8, 8)
    rng = np.random.default_rng(11)
    x = stimuli(model, rng)
    rep = check(run_sim(model, x, "verilator", HwConfig()))
    assert rep["inferences"] == len(x)
    # a reset in the middle of an inference, then correct inferences (same build)
    check(run_sim(model, x[-3:], "verilator", HwConfig(), mid_reset=True))


def test_verilator_skip_modes_same_results_fewer_cycles():
    model = export_for(8, 8, 8)
    x = stimuli(model, np.random.default_rng(12), kinds=("sparse",), real=1)
    configs = {mode: HwConfig().with_skip(mode) for mode in ("all", "1x1", "off")}
    configs["all-channels"] = HwConfig(dw_frames=False)
    assert [c.depthwise for c in configs.values()] == ["frames"] + ["channels"] * 3
    reps = {mode: check(run_sim(model, x, "verilator", cfg, gaps=False))
            for mode, cfg in configs.items()}
    for mode in ("1x1", "off", "all-channels"):
        assert reps[mode]["classes"] == reps["all"]["classes"]
        assert reps[mode]["macs_issued"] == reps["all"]["macs_issued"]
    # skipping the 1x1 zeros saves cycles; skipping all-zero depthwise words saves more, and
    # the frame-parallel depthwise, which skips every zero input of blocks 2..4, more again
    assert (reps["all"]["cycles"] < reps["all-channels"]["cycles"] < reps["1x1"]["cycles"]
            < reps["off"]["cycles"])
    dw = [n for n in reps["all"]["layers"] if n.endswith(".dw")]
    for n in dw:
        assert reps["1x1"]["layers"][n]["cycles"] == reps["off"]["layers"][n]["cycles"], n
    assert reps["all"]["layers"]["block1.dw"] == reps["all-channels"]["layers"]["block1.dw"]


def test_verilator_narrow_bits():
    model = export_for(4, 4, 6)
    x = stimuli(model, np.random.default_rng(13), kinds=("extremes", "uniform"), real=1)
    check(run_sim(model, x, "verilator"))


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_verilator_gates_closed_or_open(mode):
    model = gated_export(4, mode, seed=2)
    x = stimuli(model, np.random.default_rng(14), kinds=("uniform", "max"), real=0)
    rep = check(run_sim(model, x, "verilator"))
    T = model["frames"]
    if mode == "closed":
        assert rep["frames_skipped"] == T * len(x)
        assert rep["layers"]["classifier"]["cycles"] == 0
    else:
        assert rep["frames_skipped"] == 0
        assert rep["layers"]["classifier"]["macs_issued"] == 12 * 32 * T * len(x)


def test_scoreboard_fails_on_broken_rtl():
    model = export_for(8, 8, 8)
    x = stimuli(model, np.random.default_rng(15), kinds=("uniform",), real=1)
    pw1 = next(l for l in build_plan(model).layers if l.name == "block1.pw")
    rep = run_sim(model, x, "verilator", break_rtl=pw1.wbase)   # W[0:P, 0] of block1.pw
    assert rep["mismatches"] > 0


def test_bench_times_out_with_a_clear_error():
    """A DUT that does not answer within the cycle budget fails the run (it used to hang it)."""
    model = export_for(4, 8, 8)
    x = stimuli(model, np.random.default_rng(17), kinds=("uniform",), real=0)
    with pytest.raises(SimError, match=r"timeout: 0 of 1 results after the budget of 2,000"):
        run_sim(model, x, "verilator", timeout_cycles=2_000)


def undriven_result_payload(verilog: str) -> str:
    """The result stream's data left undriven (Z) while valid still toggles."""
    assert ".result__payload(result__payload)," in verilog
    return verilog.replace(".result__payload(result__payload),", ".result__payload(),", 1)


@needs_icarus
def test_xz_on_an_output_fails_with_its_name():
    model = export_for(4, 8, 8)
    x = stimuli(model, np.random.default_rng(18), kinds=("uniform",), real=0)
    with pytest.raises(SimError, match=r"result__payload has X/Z bits"):
        run_sim(model, x, "icarus", mutate=undriven_result_payload)


@needs_icarus
def test_icarus_c8_int8():
    model = export_for(8, 8, 8)
    x = stimuli(model, np.random.default_rng(16), kinds=("zeros", "max", "extremes"), real=1)
    check(run_sim(model, x, "icarus"))


MATRIX = [(sim, C, bits) for sim in ("icarus", "verilator") for C in (4, 8, 16, 32)
          for bits in (4, 6, 8)]


@pytest.mark.slow
@pytest.mark.parametrize("sim,C,bits", MATRIX)
def test_full_matrix(sim, C, bits):
    if sim == "icarus" and shutil.which("iverilog") is None:
        pytest.skip("iverilog missing")
    model = export_for(C, bits, bits)
    rng = np.random.default_rng(100 + C + bits)
    kinds = ("uniform", "extremes") if sim == "icarus" else ("zeros", "max", "min", "extremes",
                                                              "uniform", "sparse")
    x = stimuli(model, rng, kinds=kinds, real=1 if sim == "icarus" else 2)
    check(run_sim(model, x, sim))
