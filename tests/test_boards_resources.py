"""The resource check before synthesis (boards/resources.py) and the roofline of `bench`.

The expected numbers of the estimate are measurements (nextpnr / Yosys reports of real builds,
resources.CHECKED and CHECKED_BARE), not restatements of the model.
"""
import json

import pytest

from sparknet_hw import cli, shipped
from sparknet_hw.boards import resources
from sparknet_hw.boards.platforms import DEVICES, resolve
from sparknet_hw.boards.synth import DoesNotFit
from sparknet_hw.quant.export_format import load_export

FIFO_DEPTH = {"ice40": 2, "ecp5": 4}          # the gate FIFO of the board builds (DEFAULT_HW)


def _hw(pes, skip, depthwise, rom_style, fifo_depth, **other):
    from sparknet_hw.rtl import HwConfig
    return HwConfig(cols=pes, fifo_depth=fifo_depth, rom_style=rom_style,
                    dw_frames=depthwise == "frames", **other).with_skip(skip)


def _board_core(C, hw):
    from sparknet_hw.boards.top import UARTAccelerator
    from sparknet_hw.rtl import SparkNetAccelerator
    model = load_export(shipped.int8_export(C))
    return UARTAccelerator(SparkNetAccelerator(model, hw), model, 104, 600000)


def _slow_unless(fast):
    return () if fast else (pytest.mark.slow,)


# the iCEBreaker builds with SPRAM and the serial classifier (the defaults), one without them,
# and C = 32 on the ULX3S run by default; the other measured builds with -m slow
FAST = {(8, 2, "ice40", False), (4, 4, "ice40", True), (8, 4, "ice40", True),
        (16, 2, "ice40", True), (32, 16, "ecp5", False)}


def _case_id(case) -> str:
    family, C, pes, skip, depthwise, rom, measured = case
    extra = "-spram-2adders" if measured.get("hw") else ""
    if measured.get("hw", {}).get("accumulators") == "dsp":
        extra += "-dsp"
    return f"{family}-C{C}-{pes}pe-{skip}-{depthwise}-{rom}{extra}"


@pytest.mark.parametrize("family,C,pes,skip,depthwise,rom,measured", [
    pytest.param(*case, marks=_slow_unless((case[1], case[2], case[0], "hw" in case[6]) in FAST
                                           and case[4] == "channels"),
                 id=_case_id(case))
    for case in resources.CHECKED])
def test_estimate_matches_placed_builds(family, C, pes, skip, depthwise, rom, measured):
    """DSPs and block RAMs exactly as nextpnr counted them; the logic band holds the count."""
    needs = resources.estimate(_board_core(C, _hw(pes, skip, depthwise, rom,
                                                  FIFO_DEPTH[family], **measured.get("hw", {}))),
                               family)
    # measured on the RTL of commit 09a0335 (the rows with "hw": of commit acbccd3, this
    # session's SPRAM and serial classifier): a change of the design's memories or lanes
    # needs new builds here (bench / build) and in resources.CHECKED
    stale = "the RTL changed? re-measure the build and update resources.CHECKED"
    assert needs.dsps == measured["dsps"], stale
    assert needs.brams == measured["brams"], stale
    assert needs.sprams == measured.get("sprams", 0), stale
    assert needs.logic_low <= measured["luts"] <= needs.logic_high, stale
    assert abs(needs.logic - measured["luts"]) <= 0.08 * measured["luts"], stale


@pytest.mark.slow
@pytest.mark.parametrize("pes,skip,depthwise,rom,measured", resources.CHECKED_BARE)
def test_estimate_matches_yosys_on_the_bare_accelerator(pes, skip, depthwise, rom, measured):
    from sparknet_hw.rtl import SparkNetAccelerator
    model = load_export(shipped.int8_export(8))
    needs = resources.estimate(SparkNetAccelerator(model, _hw(pes, skip, depthwise, rom, 4)),
                               "ice40")
    assert (needs.dsps, needs.brams) == (measured["dsps"], measured["brams"])
    assert needs.logic_low <= 1.01 * measured["lut_carry"] <= needs.logic_high


def test_dead_read_ports_and_bits_take_no_block_ram():
    """Without depthwise skipping the mask memories' second read port is unused and only the
    low bits of the X mask are read: Yosys drops those blocks (C = 8, 2 PEs: 29 placed)."""
    needs = resources.estimate(_board_core(8, _hw(2, "1x1", "channels", "block", 2)), "ice40")
    xmask = next(m for m in needs.memories if m.name.endswith("accel.xmask"))
    assert xmask.read_ports == 1 and xmask.blocks == 1
    with_dw = resources.estimate(_board_core(8, _hw(2, "all", "frames", "block", 2)), "ice40")
    xmask = next(m for m in with_dw.memories if m.name.endswith("accel.xmask"))
    assert xmask.read_ports == 2 and xmask.blocks > 1


def test_memory_mapping_follows_yosys_costs():
    """Single memories through the memory_libmap model: a 4-kbit block holds 256x16 (bit write
    enables), a tiny RAM stays in flip-flops, a ROM in logic unless ram_style=block."""
    def mem(depth, width, writes=1, block=False, granule=None):
        en = [tuple(i // (granule or width) + 2 for i in range(width))] * writes
        live = frozenset(range(width))
        return resources._Memory("m", depth, width, [resources._Port(True, frozenset(), live)],
                                 en, block=block, logic=False)
    ram = resources._map_memory(mem(256, 16, granule=2), "ice40")
    assert ram["blocks"] == 1 and "256x16" in ram["mapping"]
    assert resources._map_memory(mem(1616, 16), "ice40")["blocks"] == -(-1616 // 256)
    assert resources._map_memory(mem(2, 32), "ice40")["mapping"] == "logic"
    rom = mem(32, 96, writes=0)
    assert resources._map_memory(rom, "ice40")["mapping"] == "logic"       # 3 kbit of ROM
    rom.block = True
    assert resources._map_memory(rom, "ice40")["blocks"] == 96 // 16
    # ECP5: a 101 x 32 RAM in one 512x36 half of a DP16KD, a 12 x 50 one in LUT RAM
    assert "PDPW16KD 512x36" in resources._map_memory(mem(101, 32), "ecp5")["mapping"]
    small = resources._map_memory(mem(12, 50), "ecp5")
    assert small["blocks"] == 0 and small["lut_rams"] == -(-50 // 4)


def test_shipped_defaults_pass_the_check():
    """`bench` builds every one of them: none may be rejected before synthesis."""
    from sparknet_hw.pipeline import BENCH_TARGETS, default_hw
    from sparknet_hw.pipeline.build import activation_ram
    for C, board in BENCH_TARGETS:
        spec = resolve(board)
        d = default_hw(spec.family, C)
        hw = _hw(d["pes"], d["skip"], d["depthwise"], d["rom_style"], d["fifo_depth"],
                 classifier_adders=d["classifier_adders"],
                 activation_ram=activation_ram(spec, d["pes"]))
        needs = resources.estimate(_board_core(C, hw), spec.family)
        assert resources.shortfalls(needs, spec.device) == [], (C, board)
        resources.check(needs, spec.device, board, hw)


def test_misfit_message_names_needs_against_the_chip():
    hw = _hw(4, "1x1", "channels", "block", 2)
    needs = resources.estimate(_board_core(8, hw), "ice40")
    device = DEVICES["iCE40UP5K"]
    with pytest.raises(resources.ResourceShortage) as err:
        resources.check(needs, device, "icebreaker", hw)
    msg = str(err.value)
    assert isinstance(err.value, DoesNotFit)                 # bench treats it as a misfit
    assert f"needs {needs.brams} block RAMs" in msg and f"has {device.brams}" in msg
    assert f"DSPs {needs.dsps}/{device.dsps}" in msg and "before synthesis" in msg
    assert "--pes 2" in msg and "ulx3s" in msg and "\n" not in msg
    assert err.value.utilization("ice40")["brams"] == {"used": needs.brams,
                                                       "total": device.brams,
                                                       "name": "ICESTORM_RAM"}
    # the DSPs: 16 lanes on 8 SB_MAC16s -> advice for as many lanes as there are DSPs
    wide = resources.Needs("ice40", 16, 10, 1000, 900, 1100, 300, 0, 0)
    with pytest.raises(resources.ResourceShortage, match=r"needs 16 DSPs.*--pes 8") as err:
        resources.check(wide, device, "icebreaker", _hw(16, "1x1", "channels", "block", 2))
    assert "a smaller C" not in str(err.value)              # C does not change the DSPs
    # logic: rejected only when even the low end of the band is over; notes otherwise
    edge = resources.Needs("ice40", 2, 29, device.logic + 10, device.logic - 200,
                           device.logic + 600, 1700, 0, 0)
    assert "may not fit" in resources.check(edge, device, "icebreaker")[0]
    near = resources.Needs("ice40", 2, 29, device.logic - 10, device.logic - 200,
                           device.logic + 600, 1700, 0, 0)
    assert resources.check(near, device, "icebreaker") == []
    over = resources.Needs("ice40", 2, 29, 7000, device.logic + 1, 8000, 2300, 0, 0)
    with pytest.raises(resources.ResourceShortage, match="needs at least"):
        resources.check(over, device, "icebreaker")


def _fails(capsys, *argv, match):
    code = cli.main(list(argv))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err and len(err.splitlines()) == 1
    assert match in err, err
    return err


def test_build_of_a_misfit_fails_before_synthesis(capsys, tmp_path, monkeypatch):
    from sparknet_hw.pipeline import build

    def no_synth(plan, rtl):
        raise AssertionError("synthesis started for a design that cannot fit")

    def no_verify(plan, exp, rtl):
        raise AssertionError("verification started for a design that cannot fit")
    monkeypatch.setattr(build, "stage_synth", no_synth)
    monkeypatch.setattr(build, "stage_verify", no_verify)
    err = _fails(capsys, "build", "--C", "8", "--pes", "8", "--out", str(tmp_path / "b"),
                 match="does not fit icebreaker")
    assert "stage 2/5 'rtl'" in err and "block RAMs" in err and "/30" in err
    assert "before synthesis" in err and "--pes 4" in err


def test_pll_beyond_the_chip_fails_before_anything_runs(capsys, tmp_path):
    out = tmp_path / "b"
    _fails(capsys, "build", "--pll-mhz", "300", "--out", str(out),
           match="the ice40 PLL makes 16 to 275 MHz")
    _fails(capsys, "build", "--board", "ulx3s", "--pll-mhz", "450", "--out", str(out),
           match="the ecp5 PLL makes 3.125 to 400 MHz")
    assert not out.exists()                                 # checked in prepare, before export


def test_device_table_is_where_the_boards_look():
    for board, part in (("icebreaker", "iCE40UP5K"), ("ulx3s", "LFE5U-25F"),
                        ("orangecrab", "LFE5U-25F")):
        assert resolve(board).device is DEVICES[part]
    assert resolve(device="25k-cabga256").device.part == "LFE5U-25F"
    assert resolve(device="hx8k-ct256").device.dsps == 0
    up5k = DEVICES["iCE40UP5K"]
    # the chip floor counts an SB_MAC16 as two 8x8 products, one for wider operands
    assert up5k.multipliers(8, 8) == 2 * up5k.dsps and up5k.multipliers(8, 9) == up5k.dsps
    ecp5 = DEVICES["LFE5U-25F"]
    assert ecp5.multipliers(8, 8) == ecp5.dsps


def test_roofline_floors():
    device = DEVICES["iCE40UP5K"]
    macs, cycles, pes = 90_000.0, 63_000.0, 2
    r = resources.roofline(macs, cycles, pes, device)
    assert r["floor_design_cycles"] == macs / pes
    assert r["floor_chip_cycles"] == macs / device.multipliers(8, 8)
    assert r["cycles_over_design_floor"] == pytest.approx(cycles * pes / macs)
    assert r["cycles_over_chip_floor"] == pytest.approx(cycles * device.multipliers() / macs)
    assert r["cycles_over_chip_floor"] >= r["cycles_over_design_floor"]   # 2 PEs of 16
    assert resources.roofline(macs, cycles, pes, None)["floor_chip_cycles"] is None


def test_bench_roofline_columns():
    from sparknet_hw import pipeline
    device = DEVICES["iCE40UP5K"]
    macs, cycles, pes = 92_000.0, 63_631.0, 2
    row = {"C": 8, "board": "icebreaker", "device": device.part, "params": 2356,
           "macs_dense": 176952.0, "macs_issued": macs, "pes": pes, "cycles": cycles,
           "utilization": macs / (pes * cycles), "skip_ratio": 0.48, "luts": 4856,
           "luts_total": 5280, "dsps": 2, "dsps_total": 8, "brams": 29, "brams_total": 30,
           "fmax_mhz": 25.1, "latency_us": cycles / 25.1, "latency_us_noskip": None,
           "clock_mhz": 12.0, "latency_us_at_clock": cycles / 12.0,
           "latency_us_noskip_at_clock": 3454.0, "mismatches": 0, "error": None,
           **resources.roofline(macs, cycles, pes, device)}
    text = pipeline.format_bench([row])
    head, _, line = text.splitlines()[:3]
    assert "PE floor" in head and "chip floor" in head
    assert f"{macs / pes:,.0f}" in line and f"{cycles * pes / macs:.2f}" in line
    chip = device.multipliers()
    assert f"{macs / chip:,.0f}" in line and f"{cycles * chip / macs:.1f}" in line
    assert f"{device.part}: {chip}" in text                # the footnote names the count
    json.dumps(row)                                        # the JSON rows carry the floors


def test_spram_buffers_on_a_chip_without_spram_fail_before_synthesis():
    hw = _hw(2, "1x1", "channels", "block", 2, activation_ram="spram", classifier_adders=2)
    needs = resources.estimate(_board_core(8, hw), "ice40")
    assert needs.sprams == 2
    with pytest.raises(resources.ResourceShortage,
                       match=r"needs 2 single-port RAMs \(SB_SPRAM256KA, 256 kbit\), the "
                             r"iCE40HX8K has 0"):
        resources.check(needs, DEVICES["iCE40HX8K"], "hx8k-ct256", hw)
    assert resources.check(needs, DEVICES["iCE40UP5K"], "icebreaker", hw) == []
