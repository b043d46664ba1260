"""The energy estimate (boards/power.py) and the activity it is made from (sim/activity.py).

* the VCD toggle counter on a hand-written VCD: exact toggles per signal and window, aliases
  counted once, layout views / memory rows / strings / the clock skipped, delta-cycle changes
  counted once, x read as 0, time high of 1-bit signals;
* the energy arithmetic on fixed inputs, recomputed here from the published raw numbers
  (not from the module's derived constants);
* the grouping into blocks (cells from a real netlist, activity from a synthetic one);
* bad input: unknown board, a board without figures, zero cycles, negative rates;
* the VCD names of the real design against the blocks of its netlist (a few cycles);
* `slow`: one real (short) inference simulated for its activity, checked against the
  schedule model (~20 s), and the full C = 8 iCEBreaker estimate (~2.5 min uncached).
"""
import json

import numpy as np
import pytest

from sparknet_hw.boards import power
from sparknet_hw.boards.power import (BlockCells, BlockInput, PowerError, block_cells,
                                      block_inputs, block_of, energy_markdown, estimate,
                                      figures_for, format_energy)
from sparknet_hw.sim.activity import Activity, change_times, count_toggles

VCD = """$timescale 1 fs $end
$scope module bench $end
$var wire 1 ! clk $end
$var wire 1 # marker $end
$scope module top $end
$var wire 1 ! clk $end
$var wire 1 " run $end
$var wire 4 $ bus $end
$var wire 2 % \\bus.lo $end
$var wire 4 & \\mem[0] $end
$var wire 1 ' en $end
$var string 1 ( state $end
$scope module sub $end
$var wire 4 $ bus_in $end
$var wire 3 ) cnt $end
$upscope $end
$upscope $end
$upscope $end
$enddefinitions $end
#0
$dumpvars
0!
0"
b0000 $
b00 %
b0 &
0'
sIDLE (
b100 )
0#
$end
#10
1!
1"
b0011 $
b11 %
b1 &
1'
b001 )
#20
0!
b0101 $
b0110 $
sRUN (
b0x1 )
#30
1!
b0110 $
0'
b111 )
#40
0!
0"
b1111 $
#50
1!
"""


@pytest.fixture
def vcd(tmp_path):
    path = tmp_path / "hand.vcd"
    path.write_text(VCD)
    return path


def test_vcd_toggle_counts_are_exact(vcd):
    counts = count_toggles(vcd, {"all": (0, 100), "mid": (20, 40)})
    # counted: run, bus (alias bus_in: once, under the deepest scope), en, cnt, the marker;
    # not: the clock, the layout view \bus.lo, the memory row \mem[0], the string
    assert set(counts.vars) == {'"', "$", "'", ")", "#"}
    assert (counts.vars["$"].scope, counts.vars["$"].name) == (("bench", "top", "sub"), "bus_in")
    all_, mid = counts.windows["all"].toggles, counts.windows["mid"].toggles
    # bus: 0000 -> 0011 (2), -> 0110 at t=20 (two changes in one time step count once: 2,
    # not 2 + 2), unchanged at 30, -> 1111 (2); the $dumpvars values are no toggles
    assert all_["$"] == 6 and mid["$"] == 2
    # cnt: 100 (initial, not a toggle) -> 001 (2), 0x1 read as 001 (0), -> 111 (2)
    assert all_[")"] == 4 and mid[")"] == 2
    assert all_["'"] == 2 and mid["'"] == 1                      # en up at 10, down at 30
    assert all_['"'] == 2 and mid.get('"', 0) == 0              # run's fall at 40: t1 excluded
    assert all_.get("#", 0) == 0
    assert counts.windows["all"].high["'"] == 20 and counts.windows["mid"].high["'"] == 10
    assert counts.windows["all"].high['"'] == 30 and counts.windows["mid"].high['"'] == 20
    assert counts.end_time == 50


def test_vcd_change_times_and_bad_input(vcd):
    assert change_times(vcd, ("bench", "top"), "run") == [(0, 0), (10, 1), (40, 0)]
    from sparknet_hw.sim.activity import ActivityError
    with pytest.raises(ActivityError, match="no variable bench/top/nosuch"):
        change_times(vcd, ("bench", "top"), "nosuch")
    with pytest.raises(ActivityError, match="ends before it starts"):
        count_toggles(vcd, {"bad": (30, 20)})


# ------------------------------------------------------------------ the published figures

def _counter_toggles_by_running(step, bits):
    x, flips = 0, 0
    for _ in range(1 << bits):
        y = (x + step) % (1 << bits)
        flips += bin(x ^ y).count("1")
        x = y
    return flips / (1 << bits)


def raw_figures():
    """The coefficients recomputed from tinyvision-ai's table (uA at 12 MHz, core rail)."""
    lc_slope = (641.3 - 613.5) / (228 - 32)                      # uA per counter LC at 12 MHz
    assert _counter_toggles_by_running(1, 8) == pytest.approx(2 - 2 ** -7)  # 2 - 2^(1-n)
    a_lc = (2 - 2 ** -27) / 28
    a_dsp = (_counter_toggles_by_running(3, 8) + _counter_toggles_by_running(5, 8)) / 16
    return {"k_lc": lc_slope / 12, "a_lc": a_lc, "a_dsp": a_dsp,
            "k_clock": (613.5 - 85.6 - 32 * lc_slope) / 12,
            "k_dsp": (882 - 645 - 44 * lc_slope * a_dsp / a_lc) / 12,
            "static_uw": 1.2 * 75 + 3.3 * (0.5 + 0.5 + 0.55)}


def test_figures_match_their_sources_and_the_docstring():
    fig, raw = figures_for("icebreaker"), raw_figures()
    for key in ("k_lc", "a_lc", "a_dsp", "k_clock", "k_dsp", "static_uw"):
        assert getattr(fig, key) == pytest.approx(raw[key], rel=1e-12), key
    # the values the docstring table states
    assert round(fig.k_clock, 1) == 43.6 and round(fig.k_lc, 5) == 0.01182
    assert round(fig.k_dsp, 1) == 16.8 and round(fig.a_dsp, 3) == 0.402
    assert round(fig.a_lc, 4) == 0.0714 and fig.e_ebr_pj == 2.0
    for name in ("K_CLK | 43.6", "K_LC | 0.01182", "K_DSP | 16.8", "A_DSP | 0.402",
                 "E_EBR | 2 pJ", "I_STATIC core | 75 uA"):
        assert name in power.__doc__, name
    from sparknet_hw.boards.platforms import BOARDS
    assert figures_for(BOARDS["icebreaker"]) is figures_for("iCE40UP5K") is fig


BLOCKS = [BlockInput("a", cells=1000, toggle_rate=0.1, ebrs=4, ebr_duty=0.5, dsps=2,
                     dsp_toggle_rate=0.2, idle_ebr_duty=0.5),
          BlockInput("b", cells=500, toggle_rate=0.02, idle_toggle_rate=0.01)]


def test_energy_arithmetic_on_fixed_input():
    est = estimate("icebreaker", BLOCKS, clock_mhz=12, cycles=60_000, uart_seconds=0.2)
    r, V, f = raw_figures(), 1.2, 12
    logic_a = V * r["k_lc"] * f * 1000 * 0.1 / r["a_lc"]
    ebr_a = 2.0 * f * 4 * 0.5                                    # pJ x MHz = uW
    dsp_a = V * r["k_dsp"] * f * 2 * 0.2 / r["a_dsp"]
    logic_b = V * r["k_lc"] * f * 500 * 0.02 / r["a_lc"]
    idle_b = V * r["k_lc"] * f * 500 * 0.01 / r["a_lc"]
    clock = V * r["k_clock"] * f
    seconds = 60_000 / 12e6
    active = r["static_uw"] + clock + logic_a + ebr_a + dsp_a + logic_b
    idle = r["static_uw"] + clock + ebr_a + idle_b
    a, b = est.blocks
    assert (a.logic_uw, a.ebr_uw, a.dsp_uw) == pytest.approx((logic_a, ebr_a, dsp_a))
    assert (b.logic_uw, b.ebr_uw, b.dsp_uw, b.idle_uw) == pytest.approx((logic_b, 0, 0, idle_b))
    assert a.idle_uw == pytest.approx(ebr_a)
    assert est.seconds == pytest.approx(0.005)
    assert est.static_uw == pytest.approx(r["static_uw"]) and est.clock_uw == pytest.approx(clock)
    assert est.active_uw == pytest.approx(active) and est.idle_uw == pytest.approx(idle)
    assert est.energy_uj == pytest.approx(active * seconds)
    assert est.dynamic_energy_uj == pytest.approx((active - r["static_uw"]) * seconds)
    one_s, hop = est.windows
    assert (one_s.seconds, hop.seconds) == (1.0, 0.1)
    assert one_s.duty == pytest.approx(0.005) and hop.duty == pytest.approx(0.05)
    assert one_s.avg_uw == pytest.approx(active * seconds + idle * (1 - seconds))
    assert hop.avg_uw == pytest.approx((active * seconds + idle * (0.1 - seconds)) / 0.1)
    assert hop.avg_uw_gated == pytest.approx(
        (active * seconds + r["static_uw"] * (0.1 - seconds)) / 0.1)
    assert one_s.fits and not hop.fits                           # 0.2 s of UART per inference
    assert est.pll_uw == 0
    with_pll = estimate("icebreaker", BLOCKS, 12, 60_000, pll=True)
    assert with_pll.active_uw - est.active_uw == pytest.approx(1.2 * 138.6)
    d = est.to_dict()
    assert json.loads(json.dumps(d))["blocks"][0]["uw"] == pytest.approx(logic_a + ebr_a + dsp_a)
    assert any("ASSUMPTION" in s for s in est.assumptions)
    assert any("not a measurement" in s for s in est.assumptions)


def test_reports_name_every_block_and_the_totals():
    est = estimate("icebreaker", BLOCKS, 12, 60_000, uart_seconds=0.2)
    text = format_energy(est)
    assert "ESTIMATE" in text and "NOT sustainable over the UART" in text
    assert f"energy per inference: {est.energy_uj:,.2f} uJ" in text
    for name in ("a ", "b ", "clock tree", "static", "device"):
        assert name in text
    md = energy_markdown(est.to_dict())
    assert md.startswith("## Energy per inference (ESTIMATE)")
    assert f"**{est.energy_uj:,.2f} uJ per inference**" in md
    assert "| 100-ms hop |" in md and "not sustainable over the UART" in md
    from sparknet_hw.pipeline.energy import energy_lines
    assert energy_lines({"error": "boom"})[-1] == "Not available: boom"


def test_bad_input_is_a_clear_error():
    with pytest.raises(PowerError, match="unknown board 'nosuch'"):
        estimate("nosuch", BLOCKS, 12, 60_000)
    with pytest.raises(PowerError, match=r"no energy figures for ulx3s \(LFE5U-25F\)"):
        estimate("ulx3s", BLOCKS, 12, 60_000)
    with pytest.raises(PowerError, match="cycles per inference must be a positive number"):
        estimate("icebreaker", BLOCKS, 12, 0)
    with pytest.raises(PowerError, match="clock frequency"):
        estimate("icebreaker", BLOCKS, -12, 60_000)
    with pytest.raises(PowerError, match="no blocks"):
        estimate("icebreaker", [], 12, 60_000)
    with pytest.raises(PowerError, match="a: toggle_rate must be a non-negative number"):
        estimate("icebreaker", [BlockInput("a", 10, -0.1)], 12, 60_000)
    with pytest.raises(PowerError, match="a: cells"):
        estimate("icebreaker", [BlockInput("a", float("nan"), 0.1)], 12, 60_000)


def test_bench_energy_rejects_bad_options(capsys, tmp_path):
    from sparknet_hw import cli
    assert cli.main(["bench", "--energy", "--predict", "--out", str(tmp_path)]) == 2
    assert "choose one of --energy and --predict" in capsys.readouterr().err
    assert cli.main(["bench", "--energy", "--C", "32", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "C=32 ulx3s: failed: no energy figures for ulx3s" in out
    assert not (tmp_path / "energy_C32_ulx3s").exists()          # stopped before any work


# ------------------------------------------------------------------ blocks

def test_block_of_paths():
    accel = ("top", "accel")
    assert block_of(("top", "accel", "xbuf"), accel) == "buffers"
    assert block_of(("top", "accel", "writeback", "requant"), accel) == "writeback"
    assert block_of(("top", "accel"), accel) == "control"
    assert block_of(("top", "rx$47", "sync_rx"), accel) == "uart+framing"
    assert block_of(("top", "seq$3", "walk"), ("top",)) == "seq"


def test_block_inputs_from_activity():
    act = Activity(cycles={"active": 100, "idle": 10}, record_cycles=100, signals=[
        ["top/pes", "w", 4, {"active": 80, "idle": 0}, {"active": 0, "idle": 0}],
        ["top/pes", "acc", 4, {"active": 20, "idle": 0}, {"active": 0, "idle": 0}],
        ["top/xbuf", "$signature__en", 1, {"active": 0, "idle": 0}, {"active": 100, "idle": 10}],
        ["top/xbuf", "$signature__en$7", 1, {"active": 4, "idle": 0}, {"active": 2, "idle": 0}],
        ["top/fetch", "x", 8, {"active": 40, "idle": 8}, {"active": 0, "idle": 0}],
    ])
    cells = {"pes": BlockCells("pes", cells=100, dsps=2),
             "buffers": BlockCells("buffers", ebrs=3, memories={"xbuf": 3}),
             "fetch": BlockCells("fetch", cells=50, ebrs=2, memories={"fetch/wmem": 2})}
    got = {b.name: b for b in block_inputs(cells, act)}
    assert got["pes"].toggle_rate == pytest.approx(100 / (8 * 100))
    assert got["pes"].dsp_toggle_rate == pytest.approx(80 / (4 * 100))      # operands w (a)
    assert got["buffers"].toggle_rate == pytest.approx(4 / (2 * 100))
    assert got["buffers"].ebr_duty == 1.0 and got["buffers"].idle_ebr_duty == 1.0  # read port
    assert got["fetch"].toggle_rate == pytest.approx(0.05)
    assert got["fetch"].idle_toggle_rate == pytest.approx(0.1)
    assert got["fetch"].ebr_duty == 1.0          # no enable observed: taken as always reading
    assert got["pes"].bits == 8 and got["pes"].cells == 100
    # lanes whose DSPs are instantiated (rtl/mac16.py): each DSP's own input registers count,
    # not the operands broadcast to both DSPs of a lane
    act.signals += [["top/pes/mac0_0", "ra", 8, {"active": 30, "idle": 0}, {"active": 0, "idle": 0}],
                    ["top/pes/mac0_1", "ra", 8, {"active": 10, "idle": 0}, {"active": 0, "idle": 0}]]
    lanes = {b.name: b for b in block_inputs(cells, act)}["pes"]
    assert lanes.dsp_toggle_rate == pytest.approx(40 / (16 * 100))


def _icebreaker_plan(tmp_path, C=8):
    from sparknet_hw.pipeline import BuildOptions, prepare
    return prepare(BuildOptions(C=C, board="icebreaker", out=tmp_path / "b"))



def test_a_failed_background_activity_is_reported_and_the_build_goes_on(tmp_path, monkeypatch):
    """build runs the activity simulation in a second process beside synthesis: its error
    comes back as the report's energy error, not as an exception (~3 s: the process starts)."""
    from types import SimpleNamespace

    from sparknet_hw.pipeline.energy import ActivityJob, energy_of

    monkeypatch.setenv("SPARKNET_SIM_CACHE", str(tmp_path / "cache"))
    plan = _icebreaker_plan(tmp_path)
    exp = SimpleNamespace(model={"frames": 101})          # not an export: predict fails
    ver = SimpleNamespace(inputs=np.zeros((1, 32, 101), dtype=np.int64))
    job = ActivityJob(plan, exp, ver)
    energy = energy_of(plan, exp, None, ver, None, job)
    assert set(energy) == {"error"} and "Error" in energy["error"]
    job.cancel()                                          # a finished job: a no-op
    assert not list((tmp_path / "cache").rglob("*.json"))

def test_block_cells_of_the_icebreaker_design(tmp_path):
    from sparknet_hw.boards.resources import estimate as resources
    from sparknet_hw.boards.top import UARTAccelerator
    from sparknet_hw.rtl import SparkNetAccelerator
    from sparknet_hw.shipped import int8_export

    plan = _icebreaker_plan(tmp_path)
    model = json.loads(int8_export(8).read_text())

    def core():
        return UARTAccelerator(SparkNetAccelerator(model, plan.hw), model, plan.divisor,
                               plan.timeout_cycles)

    needs = resources(core(), "ice40")
    cells = block_cells(core(), "ice40", placed_cells=4856)
    assert sum(b.ebrs for b in cells.values()) == needs.brams
    assert sum(b.dsps for b in cells.values()) == needs.dsps == cells["pes"].dsps == plan.hw.pes
    assert sum(b.ffs for b in cells.values()) == needs.ffs
    assert sum(b.cells for b in cells.values()) == pytest.approx(4856)
    assert cells["buffers"].ebrs == sum(cells["buffers"].memories.values())
    assert set(cells["buffers"].memories) <= {"xmask", "bmask", "dmem"}
    # X and B in SPRAM: 16 bits per SB_SPRAM256KA, counted apart from the block RAMs
    assert sum(b.sprams for b in cells.values()) == cells["buffers"].sprams == needs.sprams
    assert {m.split("/")[0] for m in cells["buffers"].spram_memories} == {"xbuf", "bbuf"}
    assert "fetch/wmem" in cells["fetch"].memories
    assert cells["uart+framing"].ffs > 0 and cells["uart+framing"].ebrs == 0


# ------------------------------------------------------------------ one simulated inference

def test_vcd_names_of_the_real_design_map_to_its_blocks(tmp_path):
    """What block_inputs relies on, on a short VCD of the iCEBreaker C = 8 design (no
    inference, ~3 s): every VCD scope maps to a block of the netlist, the DSP operands and
    every block RAM's port enable are there under the names looked for."""
    import re

    from amaranth.sim import Simulator

    from sparknet_hw.rtl import SparkNetAccelerator
    from sparknet_hw.shipped import int8_export
    from sparknet_hw.sim.activity import read_header

    plan = _icebreaker_plan(tmp_path)
    model = json.loads(int8_export(8).read_text())
    sim = Simulator(SparkNetAccelerator(model, plan.hw))
    sim.add_clock(1e-8)
    with sim.write_vcd(str(tmp_path / "short.vcd")):
        sim.run_until(20e-8)
    counted, _ = read_header(tmp_path / "short.vcd")
    scopes = {"/".join(v.scope[1:]) for v in counted.values()}
    blocks = {block_of(tuple(s.split("/")), ("top",)) for s in scopes}
    cells = block_cells(SparkNetAccelerator(model, plan.hw), "ice40")
    assert blocks == set(cells) and "uart+framing" not in blocks
    pes = {v.name for v in counted.values() if v.scope[1:] == ("top", "pes")}
    assert set(power.DSP_OPERANDS["pes"]) <= pes
    enables = {"/".join(v.scope[2:]) for v in counted.values()
               if v.width == 1 and re.search(r"(^|_)en(\$\d+)?$", v.name)}
    memories = {m for c in cells.values() for m in c.memories}
    assert memories and memories <= enables


@pytest.mark.slow
def test_activity_of_a_short_real_inference(tmp_path, monkeypatch):
    """C = 4 cut to 32 frames, 4 PEs (~20 s): the simulated counters equal the schedule model,
    the inference window is the hardware's cycle count, the idle accelerator is quiet, and
    the result is cached."""
    from sparknet_hw.rtl.config import HwConfig
    from sparknet_hw.shipped import int8_export
    from sparknet_hw.sim.activity import run_activity
    from sparknet_hw.sim.schedule import predict
    from sparknet_hw.sim.stimuli import real_clips

    monkeypatch.setenv("SPARKNET_SIM_CACHE", str(tmp_path / "cache"))
    full = json.loads(int8_export(4).read_text())
    model = dict(full, frames=32)
    clip = real_clips(full, 1)[0, :, :32]
    hw = HwConfig(rows=1, cols=4, fifo_depth=2, rom_style="block").with_skip("1x1")
    act = run_activity(model, hw, clip, idle_cycles=100)
    assert not act.cached
    assert act.record_cycles == predict(model, hw, clip)["cycles"] == act.cycles["active"]
    assert act.cycles["idle"] == 100
    assert all(t["idle"] == 0 for _, _, _, t, _ in act.signals)    # nothing moves when idle
    # no block RAM reads while the accelerator waits: every port enable is low when idle
    enables = [h for _, name, _, _, h in act.signals if name.startswith("$signature__en")]
    assert enables and any(h["active"] for h in enables)
    assert all(h["idle"] == 0 for h in enables)
    pes = sum(t["active"] for scope, _, _, t, _ in act.signals if scope == "top/pes")
    assert pes > 0
    again = run_activity(model, hw, clip, idle_cycles=100)
    assert again.cached and again.signals == act.signals


@pytest.mark.slow
def test_icebreaker_c8_estimate(tmp_path):
    """The shipped C = 8 design on the iCEBreaker, one real clip (~2.5 min uncached)."""
    from sparknet_hw.boards.top import UARTAccelerator
    from sparknet_hw.clips import shipped_clips
    from sparknet_hw.rtl import SparkNetAccelerator
    from sparknet_hw.shipped import int8_export
    from sparknet_hw.sim.schedule import predict

    plan = _icebreaker_plan(tmp_path)
    model = json.loads(int8_export(8).read_text())
    x = shipped_clips(model, n=1).features
    est = power.estimate_design(
        model, plan.hw, plan.spec, x,
        lambda: UARTAccelerator(SparkNetAccelerator(model, plan.hw), model, plan.divisor,
                                plan.timeout_cycles), placed_cells=4856, baud=115200)
    assert est.cycles == predict(model, plan.hw, x[0])["cycles"]
    assert est.active_uw == pytest.approx(est.static_uw + est.clock_uw + est.dynamic_uw)
    assert sum(b.cells for b in est.blocks) == pytest.approx(4856)
    assert sum(b.ebrs for b in est.blocks) == 29
    by = {b.name: b for b in est.blocks}
    assert by["pes"].dsp_uw > 0 and by["loader"].uw < 1 and by["uart+framing"].uw == 0
    assert np.isclose(est.energy_uj, est.active_uw * est.seconds)
    assert not est.windows[1].fits                   # 100 ms: the UART alone takes ~0.3 s
