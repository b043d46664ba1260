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
    """Zero skipping changes cycles, never results. The default run simulates full skipping
    (the build the other C=8 tests share) and no skipping; the schedule model, checked exactly
    against the hardware in every run, orders all four modes; `-m slow` simulates all four."""
    from sparknet_hw.sim.schedule import predict
    model = export_for(8, 8, 8)
    x = stimuli(model, np.random.default_rng(12), kinds=("sparse",), real=1)
    configs = {mode: HwConfig().with_skip(mode) for mode in ("all", "1x1", "off")}
    configs["all-channels"] = HwConfig(dw_frames=False)
    assert [c.depthwise for c in configs.values()] == ["frames"] + ["channels"] * 3
    reps = {mode: check(run_sim(model, x, "verilator", configs[mode], gaps=False))
            for mode in ("all", "off")}
    assert reps["off"]["classes"] == reps["all"]["classes"]
    assert reps["off"]["macs_issued"] == reps["all"]["macs_issued"]
    assert reps["all"]["cycles"] < reps["off"]["cycles"]
    # skipping the 1x1 zeros saves cycles; skipping all-zero depthwise words saves more, and
    # the frame-parallel depthwise, which skips every zero input of blocks 2..4, more again
    pred = {mode: [predict(model, cfg, clip) for clip in x] for mode, cfg in configs.items()}
    cycles = {mode: sum(p["cycles"] for p in preds) for mode, preds in pred.items()}
    assert cycles["all"] == reps["all"]["cycles"] and cycles["off"] == reps["off"]["cycles"]
    assert cycles["all"] < cycles["all-channels"] < cycles["1x1"] < cycles["off"]
    for n in (n for n in reps["all"]["layers"] if n.endswith(".dw")):
        assert ([p["layers"][n]["cycles"] for p in pred["1x1"]]
                == [p["layers"][n]["cycles"] for p in pred["off"]]), n
    assert ([p["layers"]["block1.dw"] for p in pred["all"]]
            == [p["layers"]["block1.dw"] for p in pred["all-channels"]])


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["1x1", "all-channels"])
def test_verilator_other_skip_modes(mode):
    model = export_for(8, 8, 8)
    x = stimuli(model, np.random.default_rng(12), kinds=("sparse",), real=1)
    cfg = HwConfig(dw_frames=False) if mode == "all-channels" else HwConfig().with_skip(mode)
    check(run_sim(model, x, "verilator", cfg, gaps=False))


def test_verilator_narrow_bits():
    model = export_for(4, 4, 6)
    x = stimuli(model, np.random.default_rng(13), kinds=("extremes", "uniform"), real=1)
    check(run_sim(model, x, "verilator"))


@pytest.mark.parametrize("mode", ["closed", pytest.param("open", marks=pytest.mark.slow)])
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
    model = export_for(8, 8, 8)       # the build test_verilator_c8_int8... made (cached)
    x = stimuli(model, np.random.default_rng(17), kinds=("uniform",), real=0)
    with pytest.raises(SimError, match=r"timeout: 0 of 1 results after the budget of 2,000 "
                       r"cycles; no inference running"):
        run_sim(model, x, "verilator", timeout_cycles=2_000)


def head_never_gets_credit(verilog: str) -> str:
    """The sequencer's hold input tied high: the head pass waits forever."""
    assert "    .hold(hold),\n" in verilog
    return verilog.replace("    .hold(hold),\n", "    .hold(1'h1),\n", 1)


def test_a_hung_dut_fails_with_the_layer_it_stalled_in():
    model = export_for(4, 8, 8)
    x = stimuli(model, np.random.default_rng(19), kinds=("uniform",), real=0)
    with pytest.raises(SimError, match=r"timeout: 0 of 1 results .* stalled in layer head"):
        run_sim(model, x, "verilator", mutate=head_never_gets_credit)


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
    # the second simulator on the shipped width: one real clip and one extreme input (each
    # C=8 inference is ~64k cycles, ~30 s in Icarus); the other kinds run under Verilator
    model = export_for(8, 8, 8)
    x = stimuli(model, np.random.default_rng(16), kinds=("extremes",), real=1)
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


def test_verilator_single_port_activation_buffers():
    """X and B in single-port RAMs (rtl/spram.py: the UltraPlus's SB_SPRAM256KA): the same
    results and issued MACs as in block RAM, DRAIN_CYCLES more per block pass (checked
    exactly against the schedule model, like every run), and no read meets a write. Then
    the iCEBreaker's combination, with the 2-adder classifier, through a reset in the
    middle of an inference (its sums and counts are cleared by writes after start)."""
    from dataclasses import replace

    from sparknet_hw.rtl.sequencer import DRAIN_CYCLES
    model = export_for(4, 8, 8)
    x = stimuli(model, np.random.default_rng(21), kinds=("uniform",), real=1)
    configs = {"block": HwConfig(), "spram": replace(HwConfig(), activation_ram="spram")}
    reps = {name: check(run_sim(model, x, "verilator", cfg, gaps=False))
            for name, cfg in configs.items()}
    assert reps["spram"]["classes"] == reps["block"]["classes"]
    assert reps["spram"]["macs_issued"] == reps["block"]["macs_issued"]
    block_passes = len(build_plan(model, configs["spram"]).passes) - 1
    assert (reps["spram"]["cycles"] - reps["block"]["cycles"]
            == len(x) * block_passes * DRAIN_CYCLES)
    ice = HwConfig(cols=4, fifo_depth=2, rom_style="block", activation_ram="spram",
                   classifier_adders=2).with_skip("1x1")
    rep = check(run_sim(model, x, "verilator", ice, mid_reset=True))
    assert rep["classes"] == reps["block"]["classes"]
    # both counted by the hardware: 6 cycles per open gate with 2 adders, 1 with 12
    assert (rep["layers"]["classifier"]["cycles"]
            == 6 * reps["block"]["layers"]["classifier"]["cycles"] > 0)


def test_verilator_four_bit_lanes_in_single_port_buffers():
    """A w4a4 export with 8 PEs packs 32-bit words into X and B: `build` puts them in SPRAM
    on the UP5K (pipeline/build.py `_fit_activation_ram`). Bit-exact against the golden
    model there too, and cycles and issued MACs as the schedule model predicts (`check`)."""
    from dataclasses import replace

    model = export_for(4, 4, 4)
    x = stimuli(model, np.random.default_rng(23), kinds=("uniform", "sparse"), real=1)
    spram = replace(HwConfig(cols=8), activation_ram="spram")
    assert build_plan(model, spram).lane_bits == 4
    check(run_sim(model, x, "verilator", spram))


def test_verilator_the_icebreaker_design_with_dsp_accumulators():
    """The UP5K design as `build` makes it with `--accumulators dsp` (each lane's sums in two
    SB_MAC16 accumulators taking turns; rtl/mac16.py's model here) at C = 8, 4 PEs, 1x1
    skipping, X and B in SPRAM, the 2-adder classifier: bit-exact against the golden model,
    with the cycles and MACs of the schedule model."""
    model = export_for(8, 8, 8)
    x = stimuli(model, np.random.default_rng(24), kinds=("uniform", "sparse"), real=1)
    hw = HwConfig(cols=4, activation_ram="spram", classifier_adders=2,
                  accumulators="dsp").with_skip("1x1")
    check(run_sim(model, x, "verilator", hw))


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog missing")
@pytest.mark.parametrize("accumulators", ["fabric", "dsp"])
def test_gate_level_the_icebreaker_design(accumulators):
    """What the bitstream holds, not the RTL: the iCEBreaker's accelerator (SPRAM buffers,
    the 2-adder classifier; products in SB_MAC16s that Yosys infers, or the DSP lanes'
    instances) synthesised as `build` does it for the UP5K (sim/gate_level.py), simulated
    gate by gate in Icarus with Yosys' cell models, on one real clip: bit-exact against the
    golden model, cycles as the schedule model predicts. (Synthesised with `-dsp`, the DSP
    lanes lose their accumulators, tests/test_rtl_mac16.py.) About 3 minutes each."""
    from sparknet_hw.sim.gate_level import accelerator_netlist

    model = export_for(4, 8, 8)
    x = stimuli(model, np.random.default_rng(25), kinds=(), real=1)
    hw = HwConfig(cols=4, activation_ram="spram", classifier_adders=2,
                  accumulators=accumulators).with_skip("1x1")
    netlist = accelerator_netlist(model, hw)
    check(run_sim(model, x, "icarus", hw, mutate=lambda _: netlist, gaps=False,
                  backpressure=False))


def test_a_read_meeting_a_write_in_a_single_port_buffer_fails(monkeypatch):
    """Without the drain between passes the next pass reads its input buffer while the last
    writes of the pass before are still in the pipeline: the bench reports it."""
    from dataclasses import replace

    monkeypatch.setattr("sparknet_hw.rtl.sequencer.DRAIN_CYCLES", 1)
    model = export_for(4, 8, 8)
    x = stimuli(model, np.random.default_rng(22), kinds=("uniform",), real=0)
    rep = run_sim(model, x, "verilator", replace(HwConfig(), activation_ram="spram"),
                  gaps=False)
    assert rep["mismatches"] > 0
    assert any("read and written in one cycle" in d for d in rep["mismatch_details"])
