"""Boards and bare devices the accelerator is built for, and the board top around the design.

Boards (amaranth-boards platforms): iCEBreaker (iCE40UP5K, default), ULX3S (ECP5 LFE5U-25F),
OrangeCrab r0.2 (ECP5 LFE5U-25F). A bare device (`--device up5k-sg48`, `25k-cabga256`, ...)
gets a minimal platform with one clock input and a UART on pins chosen below.

`DEVICES` is the one table of what each part has (logic cells, block RAMs, hard multipliers):
the pre-synthesis resource check (boards/resources.py) and the roofline of `bench` and the
build report read it through `BoardSpec.device`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from amaranth import ClockDomain, Elaboratable, Module, Mux, Signal
from amaranth.lib import io
from amaranth.build import Attrs, Clock, Pins, Resource

from sparknet_hw.errors import UserError

from .clocking import PLLClock, PLLConfig, pll_config
from .top import LED_BUSY, LED_CLASS, LED_ERROR, LED_VALID


class BoardError(UserError):
    pass


@dataclass(frozen=True)
class DeviceResources:
    """What one FPGA part has, in the units nextpnr reports (its resource names in brackets).

    `products_per_dsp`: independent 8x8 products one hard multiplier block makes per cycle.
    The iCE40's SB_MAC16 splits into two 8x8 multipliers (its "8x8 mode": A[15:8]*B[15:8] and
    A[7:0]*B[7:0], the signedness chosen per operand), so the UP5K's 8 DSPs make 16 int8
    products a cycle, the chip's limit for an int8 network (the design itself puts one
    product in each SB_MAC16, as Yosys infers it). The ECP5's MULT18X18D is counted as one
    product: its 9x9 split (MULT9X9D) is not supported by Yosys/nextpnr.
    """
    part: str
    family: str
    logic: int                 # iCE40 logic cells (ICESTORM_LC) / ECP5 LUT4s (TRELLIS_COMB)
    brams: int                 # SB_RAM40_4K (4 kbit) / DP16KD (18 kbit)
    dsps: int                  # SB_MAC16 / MULT18X18D
    sprams: int = 0            # SB_SPRAM256KA (iCE40 UltraPlus)
    products_per_dsp: int = 1

    @property
    def names(self) -> dict:
        """kind -> (nextpnr resource name, short name, long name)"""
        if self.family == "ice40":
            return {"luts": ("ICESTORM_LC", "logic cells", "logic cells"),
                    "brams": ("ICESTORM_RAM", "block RAMs", "block RAMs (SB_RAM40_4K, 4 kbit)"),
                    "dsps": ("ICESTORM_DSP", "DSPs", "DSPs (SB_MAC16)"),
                    "sprams": ("ICESTORM_SPRAM", "SPRAMs",
                               "single-port RAMs (SB_SPRAM256KA, 256 kbit)")}
        return {"luts": ("TRELLIS_COMB", "LUT4s", "LUT4s"),
                "brams": ("DP16KD", "block RAMs", "block RAMs (DP16KD, 18 kbit)"),
                "dsps": ("MULT18X18D", "multipliers", "multipliers (MULT18X18D)"),
                "sprams": ("SPRAM", "SPRAMs", "single-port RAMs (SB_SPRAM256KA: the ECP5 "
                           "has none; use HwConfig(activation_ram=\"block\"))")}

    @property
    def dsp_cell(self) -> str:
        return "SB_MAC16" if self.family == "ice40" else "MULT18X18D"

    def multipliers(self, wbits: int = 8, abits: int = 8) -> int:
        """Products the hard multipliers make per cycle for wbits x abits operands."""
        if self.products_per_dsp > 1 and (wbits > 8 or abits > 8):
            return self.dsps
        return self.dsps * self.products_per_dsp


def _ecp5_devices():
    # Lattice DS1044 table 1.1; the LUT4 totals are nextpnr's (TRELLIS_COMB), 12F: Lattice's
    # 12K (nextpnr places it on the 25F die)
    sizes = {"12": (12288, 32, 28), "25": (24288, 56, 28), "45": (43848, 108, 72),
             "85": (83640, 208, 156)}
    return {f"LFE5{variant}-{k}F": DeviceResources(f"LFE5{variant}-{k}F", "ecp5", luts, ebr, mul)
            for variant in ("U", "UM", "UM5G") for k, (luts, ebr, mul) in sizes.items()}


DEVICES = {
    # iCE40 data sheets (FPGA-DS-02008 UltraPlus, DS1040 LP/HX); the UP5K's totals are
    # nextpnr's (ICESTORM_LC 5280, ICESTORM_RAM 30, ICESTORM_DSP 8, ICESTORM_SPRAM 4)
    "iCE40UP5K": DeviceResources("iCE40UP5K", "ice40", 5280, 30, 8, 4, products_per_dsp=2),
    "iCE40UP3K": DeviceResources("iCE40UP3K", "ice40", 2800, 20, 4, 4, products_per_dsp=2),
    "iCE40HX8K": DeviceResources("iCE40HX8K", "ice40", 7680, 32, 0),
    "iCE40LP8K": DeviceResources("iCE40LP8K", "ice40", 7680, 32, 0),
    "iCE40HX4K": DeviceResources("iCE40HX4K", "ice40", 3520, 20, 0),
    "iCE40HX1K": DeviceResources("iCE40HX1K", "ice40", 1280, 16, 0),
    "iCE40LP1K": DeviceResources("iCE40LP1K", "ice40", 1280, 16, 0),
    **_ecp5_devices(),
}


@dataclass
class BoardSpec:
    name: str
    family: str                      # "ice40" or "ecp5"
    make_platform: object            # () -> amaranth Platform
    description: str
    uart_note: str
    # led name -> list of (resource name, number, subsignal or None) lit by that bit of `leds`
    leds: dict = field(default_factory=dict)
    osc_mhz: float = 12.0            # the platform's default clock (the board oscillator)
    pll: PLLConfig | None = None     # the design clock from the PLL (`--pll-mhz`)
    part: str | None = None          # the FPGA part, a key of DEVICES

    def platform(self):
        return self.make_platform()

    @property
    def device(self) -> DeviceResources | None:
        """What the board's FPGA has (DEVICES), or None for a part not in the table."""
        return DEVICES.get(self.part)

    @property
    def clock_mhz(self) -> float:
        """The frequency the design runs at: the PLL's output, or the oscillator."""
        return self.pll.f_out_mhz if self.pll else self.osc_mhz


def _icebreaker():
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    platform = ICEBreakerPlatform()
    platform.add_resources(platform.break_off_pmod)   # 5 more LEDs on the snap-off PMOD
    return platform


def _ulx3s():
    from amaranth_boards.ulx3s import ULX3S_25F_Platform

    return ULX3S_25F_Platform()


def _orangecrab():
    from amaranth_boards.orangecrab_r0_2 import OrangeCrabR0_2_25FPlatform
    from amaranth_boards.resources import UARTResource

    platform = OrangeCrabR0_2_25FPlatform()
    # no USB-serial chip on the OrangeCrab: the UART is on the Feather header pins 0 (RX) and
    # 1 (TX); connect a 3.3 V USB-serial adapter there
    platform.add_resources([UARTResource(0, rx="0", tx="1", conn=("io", 0),
                                         attrs=Attrs(IO_TYPE="LVCMOS33", PULLMODE="UP"))])
    return platform


BOARDS = {
    "icebreaker": BoardSpec(
        "icebreaker", "ice40", _icebreaker, "iCEBreaker (iCE40UP5K-SG48, 12 MHz)",
        "FTDI channel B, usually /dev/ttyUSB1",
        leds={"class0": [("led", 2, None)], "class1": [("led", 3, None)],
              "class2": [("led", 4, None)], "class3": [("led", 5, None)],
              "valid": [("led", 1, None)], "error": [("led", 0, None)],
              "busy": [("led", 6, None)]},
        osc_mhz=12.0, part="iCE40UP5K"),
    "ulx3s": BoardSpec(
        "ulx3s", "ecp5", _ulx3s, "ULX3S (ECP5 LFE5U-25F-6BG381C, 25 MHz)",
        "FTDI US1 port, usually /dev/ttyUSB0",
        leds={"class0": [("led", 0, None)], "class1": [("led", 1, None)],
              "class2": [("led", 2, None)], "class3": [("led", 3, None)],
              "valid": [("led", 4, None)], "error": [("led", 5, None)],
              "busy": [("led", 6, None)]},
        osc_mhz=25.0, part="LFE5U-25F"),
    "orangecrab": BoardSpec(
        "orangecrab", "ecp5", _orangecrab, "OrangeCrab r0.2 (ECP5 LFE5U-25F-8MG285C, 48 MHz)",
        "a 3.3 V USB-serial adapter on Feather pins 0 (board RX) and 1 (board TX)",
        # RGB colour = class + 1 in binary (r = bit 0, g = bit 1, b = bit 2); dark = no result
        leds={"code0": [("rgb_led", 0, "r")], "code1": [("rgb_led", 0, "g")],
              "code2": [("rgb_led", 0, "b")]},
        osc_mhz=48.0, part="LFE5U-25F"),
}
DEFAULT_BOARD = "icebreaker"

# bare devices: part names and, per package, (clock pin, uart rx pin, uart tx pin)
_ICE40_PARTS = {"up5k": "iCE40UP5K", "up3k": "iCE40UP3K", "hx8k": "iCE40HX8K",
                "hx4k": "iCE40HX4K", "hx1k": "iCE40HX1K", "lp8k": "iCE40LP8K", "lp1k": "iCE40LP1K"}
_ICE40_PACKAGES = {   # package -> (amaranth package, pins, parts that come in it)
    "sg48": ("SG48", ("35", "6", "9"), {"up5k", "up3k"}),
    "ct256": ("CT256", ("J3", "B10", "B12"), {"hx8k", "hx4k", "hx1k", "lp8k"}),
    "tq144": ("TQ144", ("21", "9", "8"), {"hx1k", "hx4k"}),
}
_ECP5_PARTS = {"12k": "LFE5U-12F", "25k": "LFE5U-25F", "45k": "LFE5U-45F", "85k": "LFE5U-85F",
               "um-25k": "LFE5UM-25F", "um-45k": "LFE5UM-45F", "um-85k": "LFE5UM-85F",
               "um5g-25k": "LFE5UM5G-25F", "um5g-45k": "LFE5UM5G-45F",
               "um5g-85k": "LFE5UM5G-85F"}
_ECP5_PACKAGES = {
    "cabga256": ("BG256", ("P6", "M13", "P11")),
    "cabga381": ("BG381", ("G2", "M1", "L4")),
    "csfbga285": ("MG285", ("A9", "N17", "M18")),
}
DEFAULT_CLOCK_MHZ = {"ice40": 12.0, "ecp5": 25.0}


def supported_devices() -> list[str]:
    ice40 = [f"{part}-{pkg}" for pkg, (_, _, parts) in _ICE40_PACKAGES.items()
             for part in _ICE40_PARTS if part in parts]
    ecp5 = [f"{part}-{pkg}" for part in _ECP5_PARTS for pkg in _ECP5_PACKAGES]
    return ice40 + ecp5


DEVICE_HELP = ("iCE40: up5k-sg48, up3k-sg48, hx8k|hx4k|hx1k|lp8k-ct256, hx4k|hx1k-tq144; "
               "ECP5: [um-|um5g-]12k|25k|45k|85k-cabga256|cabga381|csfbga285 "
               "(LFE5U-25F-CABGA256 style also works)")


def _parse_device(device: str):
    """-> ("ice40" | "ecp5", part key, package key), or None."""
    text = device.strip().lower()
    m = re.fullmatch(r"(?:ice40)?([a-z]+\d+k?)-([a-z]+\d+)", text)
    if m and m.group(1) in _ICE40_PARTS:
        return "ice40", m.group(1), m.group(2)
    m = re.fullmatch(r"(?:lfe5(um5g|um|u)-|(um5g|um)-)?(\d+)(?:k|f|kf)-([a-z]+\d+)", text)
    if m:
        variant = m.group(1) or m.group(2) or "u"
        part = ("" if variant == "u" else f"{variant}-") + f"{m.group(3)}k"
        if part in _ECP5_PARTS:
            return "ecp5", part, m.group(4)
    return None


def device_spec(device: str, clock_mhz: float | None = None) -> BoardSpec:
    """A bare-device platform from a string like `up5k-sg48` or `25k-CABGA256`."""
    parsed = _parse_device(device)
    if parsed is None:
        raise BoardError(f"unknown device {device!r}; use PART-PACKAGE ({DEVICE_HELP})")
    family, part, package = parsed
    if family == "ice40":
        if package not in _ICE40_PACKAGES:
            raise BoardError(f"device {device!r}: unknown iCE40 package {package!r} "
                             f"({DEVICE_HELP})")
        amaranth_pkg, pins, parts = _ICE40_PACKAGES[package]
        if part not in parts:
            raise BoardError(f"device {device!r}: {_ICE40_PARTS[part]} does not come in a "
                             f"{package.upper()} package here ({DEVICE_HELP})")
        part_name = _ICE40_PARTS[part]
        io_attrs = Attrs(IO_STANDARD="SB_LVCMOS")
    else:
        if package not in _ECP5_PACKAGES:
            raise BoardError(f"device {device!r}: unknown ECP5 package {package!r} "
                             f"({DEVICE_HELP})")
        amaranth_pkg, pins = _ECP5_PACKAGES[package]
        part_name = _ECP5_PARTS[part]
        io_attrs = Attrs(IO_TYPE="LVCMOS33")
    freq = float(clock_mhz or DEFAULT_CLOCK_MHZ[family])
    if not 1 <= freq <= 500:
        raise BoardError(f"clock {freq} MHz is out of range (1..500 MHz)")
    clk_pin, rx_pin, tx_pin = pins
    name = f"{part}-{package}"

    def make():
        from amaranth_boards.resources import UARTResource

        if family == "ice40":
            from amaranth.vendor import LatticeICE40Platform as Base
        else:
            from amaranth.vendor import LatticeECP5Platform as Base
        attrs = {"device": part_name, "package": amaranth_pkg, "default_clk": "clk",
                 "resources": [Resource("clk", 0, Pins(clk_pin, dir="i"), Clock(freq * 1e6),
                                        io_attrs),
                               UARTResource(0, rx=rx_pin, tx=tx_pin, attrs=io_attrs)],
                 "connectors": []}
        if family == "ecp5":
            attrs["speed"] = "6"
        cls = type(f"Bare_{name.replace('-', '_')}_Platform", (Base,), attrs)
        return cls()

    return BoardSpec(name, family, make,
                     f"bare {part_name} {amaranth_pkg} (clock on pin {clk_pin}, {freq:g} MHz; "
                     f"UART rx {rx_pin}, tx {tx_pin})",
                     f"UART rx on pin {rx_pin}, tx on pin {tx_pin}", osc_mhz=freq,
                     part=part_name)


def resolve(board: str | None = None, device: str | None = None,
            clock_mhz: float | None = None, pll_mhz: float | None = None) -> BoardSpec:
    if board and device:
        raise BoardError("give either --board or --device, not both")
    if device:
        spec = device_spec(device, clock_mhz)
    else:
        name = (board or DEFAULT_BOARD).lower()
        if name not in BOARDS:
            raise BoardError(f"unknown board {board!r}; boards: {', '.join(BOARDS)} "
                             f"(or --device PART-PACKAGE for a bare chip)")
        if clock_mhz is not None:
            raise BoardError("--clock-mhz only applies to --device builds; a board runs from "
                             "its own oscillator (--pll-mhz runs the design faster from the "
                             "PLL)")
        spec = BOARDS[name]
    if pll_mhz is not None:
        spec = replace(spec, pll=pll_config(spec.family, spec.osc_mhz, pll_mhz))
    return spec


_LED_BITS = {"class0": LED_CLASS.start, "class1": LED_CLASS.start + 1,
             "class2": LED_CLASS.start + 2, "class3": LED_CLASS.start + 3,
             "valid": LED_VALID, "error": LED_ERROR, "busy": LED_BUSY}


class BoardTop(Elaboratable):
    """The UART design on a board: UART pins and LEDs from the platform."""

    def __init__(self, core, spec: BoardSpec):
        self.core = core
        self.spec = spec

    def elaborate(self, platform):
        m = Module()
        if self.spec.pll is not None:
            m.domains.sync = ClockDomain("sync")
            m.submodules.clocking = PLLClock(self.spec.pll, platform.default_clk)
        m.submodules.core = core = self.core
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [core.rx.eq(rx.i), tx.o.eq(core.tx)]
        # code = class + 1 once a result is out, 0 before: for boards with only an RGB LED
        code = Signal(5)
        m.d.comb += code.eq(Mux(core.leds[LED_VALID], core.leds[LED_CLASS] + 1, 0))
        requested = {}
        for what, pins in self.spec.leds.items():
            bit = code[int(what[4:])] if what.startswith("code") else core.leds[_LED_BITS[what]]
            for res_name, number, sub in pins:
                if (res_name, number) not in requested:
                    requested[res_name, number] = platform.request(res_name, number, dir="-")
                res = requested[res_name, number]
                buf = io.Buffer("o", getattr(res, sub) if sub else res)
                m.submodules[f"{what}_{res_name}{number}{sub or ''}"] = buf
                m.d.comb += buf.o.eq(bit)
        return m
