"""Running the design from the FPGA's PLL instead of the board oscillator (`build --pll-mhz`).

`pll_config` picks the divider settings that give the highest frequency not above the one
asked for (so a clock that closes timing stays closed), within each family's PLL limits:

    iCE40 SB_PLL40: f_pfd = f_in / (DIVR+1) in 10..133 MHz, f_vco = f_pfd * (DIVF+1) in
                    533..1066 MHz, f_out = f_vco / 2**DIVQ in 16..275 MHz (DIVQ 1..6)
    ECP5 EHXPLLL:   f_pfd = f_in / CLKI_DIV >= 3.125 MHz, f_out = f_pfd * CLKFB_DIV (feedback
                    from CLKOP), f_vco = f_out * CLKOP_DIV in 400..800 MHz, f_out 3.125..400 MHz

`PLLClock` replaces the platform's default `sync` domain: oscillator pin -> PLL -> `sync`,
held in reset until the PLL has locked and, on the iCE40, a few microseconds more (block RAM
reads are not valid right after configuration).
"""
from __future__ import annotations

from dataclasses import dataclass

from amaranth import ClockDomain, ClockSignal, Elaboratable, Instance, Module, ResetSignal, Signal
from amaranth.lib import io

from sparknet_hw.errors import UserError


class PLLError(UserError):
    pass


@dataclass(frozen=True)
class PLLConfig:
    family: str
    f_in_mhz: float
    f_out_mhz: float
    params: dict             # divider settings, by the primitive's parameter names


def _ice40(f_in: float):
    """Every valid (f_out, settings) of the iCE40 PLL for input f_in."""
    for divr in range(16):
        f_pfd = f_in / (divr + 1)
        if not 10 <= f_pfd <= 133:
            continue
        # loop filter setting for the phase detector frequency (Lattice's iCE40 PLL tables)
        filt = next(i for i, lim in enumerate((17, 26, 44, 66, 101, 1e9), 1) if f_pfd < lim)
        for divf in range(128):
            f_vco = f_pfd * (divf + 1)
            if not 533 <= f_vco <= 1066:
                continue
            for divq in range(1, 7):
                f_out = f_vco / 2 ** divq
                if 16 <= f_out <= 275:
                    yield f_out, {"DIVR": divr, "DIVF": divf, "DIVQ": divq,
                                  "FILTER_RANGE": filt}


def _ecp5(f_in: float):
    """Every valid (f_out, settings) of the ECP5 PLL (smallest CLKOP_DIV) for input f_in."""
    for clki in range(1, 129):
        f_pfd = f_in / clki
        if f_pfd < 3.125:
            break
        for clkfb in range(1, 81):
            f_out = f_pfd * clkfb
            if not 3.125 <= f_out <= 400:
                continue
            clkop = next((d for d in range(1, 129) if 400 <= f_out * d <= 800), None)
            if clkop is not None:
                yield f_out, {"CLKI_DIV": clki, "CLKFB_DIV": clkfb, "CLKOP_DIV": clkop,
                              "CLKOP_CPHASE": clkop - 1}


LIMITS = {"ice40": (16.0, 275.0), "ecp5": (3.125, 400.0)}


def pll_config(family: str, f_in_mhz: float, f_want_mhz: float) -> PLLConfig:
    """The PLL setting with the highest output frequency <= f_want_mhz."""
    lo, hi = LIMITS[family]
    if not lo <= f_want_mhz <= hi:
        raise PLLError(f"--pll-mhz {f_want_mhz:g}: the {family} PLL makes {lo:g} to {hi:g} MHz"
                       + (" (below that, leave out --pll-mhz: the board's "
                          f"{f_in_mhz:g} MHz oscillator clocks the design)"
                          if f_want_mhz < lo else ""))
    settings = list((_ice40 if family == "ice40" else _ecp5)(f_in_mhz))
    below = [(f, p) for f, p in settings if f <= f_want_mhz]
    if not below:
        lowest = min((f for f, _ in settings), default=None)
        raise PLLError(f"--pll-mhz {f_want_mhz:g}: the {family} PLL cannot make it from the "
                       f"{f_in_mhz:g} MHz oscillator"
                       + (f" (the lowest it makes is {lowest:g} MHz)" if lowest else ""))
    # the highest frequency; among equals the first found (smallest dividers)
    f_out, params = max(below, key=lambda fp: fp[0])
    return PLLConfig(family, f_in_mhz, f_out, params)


class PLLClock(Elaboratable):
    """Drives the `sync` domain (defined by the caller) from the PLL, which is fed by the
    platform's clock resource."""

    def __init__(self, config: PLLConfig, resource: str, reset_us: float = 20.0):
        self.config = config
        self.resource = resource
        self.reset_cycles = max(2, int(reset_us * config.f_out_mhz))

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        clk = ClockSignal("sync")
        pin = platform.request(self.resource, 0, dir="-")
        lock = Signal()
        if cfg.family == "ice40":
            p = cfg.params
            # the oscillator pin drives the PLL pad directly (no input buffer in between)
            m.submodules.pll = Instance(
                "SB_PLL40_PAD", p_FEEDBACK_PATH="SIMPLE", p_DIVR=p["DIVR"], p_DIVF=p["DIVF"],
                p_DIVQ=p["DIVQ"], p_FILTER_RANGE=p["FILTER_RANGE"],
                i_PACKAGEPIN=pin.io, i_RESETB=1, i_BYPASS=0,
                o_PLLOUTGLOBAL=clk, o_LOCK=lock)
        else:
            p = cfg.params
            m.submodules.clk_buf = buf = io.Buffer("i", pin)
            m.submodules.pll = Instance(
                "EHXPLLL", p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED",
                p_STDBY_ENABLE="DISABLED", p_DPHASE_SOURCE="DISABLED",
                p_OUTDIVIDER_MUXA="DIVA", p_CLKOP_ENABLE="ENABLED",
                p_CLKOP_DIV=p["CLKOP_DIV"], p_CLKOP_CPHASE=p["CLKOP_CPHASE"],
                p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=p["CLKFB_DIV"],
                p_CLKI_DIV=p["CLKI_DIV"],
                a_FREQUENCY_PIN_CLKI=f"{cfg.f_in_mhz:g}",
                a_FREQUENCY_PIN_CLKOP=f"{cfg.f_out_mhz:.6f}",
                i_CLKI=buf.i, i_CLKFB=clk, i_RST=0, i_STDBY=0,
                i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=0, i_PHASESTEP=0,
                i_PHASELOADREG=0, i_PLLWAKESYNC=0, i_ENCLKOP=0,
                o_CLKOP=clk, o_LOCK=lock)
        # reset until locked, then a little longer; the count restarts if the lock drops
        m.domains.por = cd_por = ClockDomain("por", reset_less=True)
        m.d.comb += cd_por.clk.eq(clk)
        wait = Signal(range(self.reset_cycles + 1))
        with m.If(~lock):
            m.d.por += wait.eq(0)
        with m.Elif(wait != self.reset_cycles):
            m.d.por += wait.eq(wait + 1)
        m.d.comb += ResetSignal("sync").eq(wait != self.reset_cycles)
        # no explicit clock constraint: nextpnr derives the PLL output's from its settings
        # and the oscillator's (an Amaranth constraint on the domain's clock names a net
        # that synthesis renames)
        return m
