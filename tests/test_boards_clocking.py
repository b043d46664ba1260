"""The PLL option (`build --pll-mhz`): divider settings and real small builds with the PLL."""
import pytest
from amaranth import ClockDomain, Elaboratable, Module

from sparknet_hw.boards import synth
from sparknet_hw.boards.clocking import PLLClock, PLLError, pll_config
from sparknet_hw.boards.platforms import BOARDS, BoardError, resolve

from test_boards_synth import MulCounter


def ice40_out(p, f_in):
    return f_in * (p["DIVF"] + 1) / (p["DIVR"] + 1) / 2 ** p["DIVQ"]


@pytest.mark.parametrize("want", [16.9, 18, 19.9, 25, 33.3, 48, 100])
def test_ice40_settings_within_limits_and_not_above_the_request(want):
    cfg = pll_config("ice40", 12.0, want)
    p = cfg.params
    assert cfg.f_out_mhz == pytest.approx(ice40_out(p, 12.0)) and cfg.f_out_mhz <= want
    assert cfg.f_out_mhz > 0.97 * want                 # 12 MHz / 2**DIVQ steps are fine enough
    f_pfd = 12.0 / (p["DIVR"] + 1)
    assert 10 <= f_pfd <= 133 and 533 <= f_pfd * (p["DIVF"] + 1) <= 1066
    assert 1 <= p["DIVQ"] <= 6 and p["FILTER_RANGE"] == 1      # 12 MHz phase detector


def test_ice40_settings_match_icepll():
    # `icepll -i 12 -o 48` and `-o 18`: DIVR 0, DIVF 63, DIVQ 4 / DIVF 47, DIVQ 5, filter 1
    assert pll_config("ice40", 12.0, 48).params == {"DIVR": 0, "DIVF": 63, "DIVQ": 4,
                                                    "FILTER_RANGE": 1}
    assert pll_config("ice40", 12.0, 18).params["DIVF"] == 47


@pytest.mark.parametrize("f_in,want", [(25.0, 36), (25.0, 50), (48.0, 30), (25.0, 123.4)])
def test_ecp5_settings_within_limits_and_not_above_the_request(f_in, want):
    cfg = pll_config("ecp5", f_in, want)
    p = cfg.params
    f_out = f_in / p["CLKI_DIV"] * p["CLKFB_DIV"]
    assert cfg.f_out_mhz == pytest.approx(f_out) and f_out <= want and f_out > 0.95 * want
    assert f_in / p["CLKI_DIV"] >= 3.125 and 400 <= f_out * p["CLKOP_DIV"] <= 800
    assert p["CLKOP_CPHASE"] == p["CLKOP_DIV"] - 1


def test_out_of_range_requests_are_clear_errors():
    with pytest.raises(PLLError, match="16 to 275 MHz.*12 MHz oscillator"):
        pll_config("ice40", 12.0, 14)
    with pytest.raises(PLLError, match="lowest it makes is 16.125 MHz"):
        pll_config("ice40", 12.0, 16.0)
    with pytest.raises(PLLError, match="3.125 to 400 MHz"):
        pll_config("ecp5", 25.0, 500)


def test_boards_resolve_with_a_pll():
    spec = resolve("icebreaker", pll_mhz=20)
    assert spec.pll is not None and spec.clock_mhz == pytest.approx(19.875)
    assert BOARDS["icebreaker"].pll is None and BOARDS["icebreaker"].clock_mhz == 12.0
    assert resolve("ulx3s").clock_mhz == 25.0 and resolve("orangecrab").clock_mhz == 48.0
    for spec in BOARDS.values():               # the PLL input is the platform's default clock
        platform = spec.platform()
        assert platform.default_clk_frequency == spec.osc_mhz * 1e6, spec.name
        assert platform.lookup(platform.default_clk, 0).clock is not None
    assert resolve(device="25k-cabga256", clock_mhz=50, pll_mhz=75).pll.f_in_mhz == 50
    with pytest.raises(BoardError, match="--pll-mhz runs the design faster"):
        resolve("icebreaker", clock_mhz=30)


class WithPLL(Elaboratable):
    def __init__(self, spec, design):
        self.spec, self.design = spec, design

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        m.submodules.clocking = PLLClock(self.spec.pll, platform.default_clk)
        m.submodules.design = self.design
        return m


@pytest.mark.parametrize("device,want,cell", [("up5k-sg48", 30, "SB_PLL40_PAD"),
                                              ("25k-cabga256", 60, "EHXPLLL")])
@pytest.mark.synth
def test_small_design_builds_from_the_pll(tmp_path, device, want, cell):
    spec = resolve(device=device, pll_mhz=want)
    r = synth.synthesize(WithPLL(spec, MulCounter(1)), spec, tmp_path, quiet=True)
    assert r.cells.get(cell) == 1
    assert r.clock_mhz == spec.pll.f_out_mhz and r.fmax_mhz >= r.clock_mhz
    # nextpnr timed the design at the PLL's output frequency, derived from its settings
    log = (tmp_path / "top.tim").read_text()
    assert f"{spec.pll.f_out_mhz:.1f} MHz" in log
