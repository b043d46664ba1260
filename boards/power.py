"""Per-inference energy ESTIMATE of the accelerator on the iCEBreaker (iCE40UP5K).

An estimate, not a measurement: published iCE40 UltraPlus figures (one datasheet table, one
open bench measurement) times the design's own switching activity, simulated on a real clip.

    est = estimate("icebreaker", blocks, clock_mhz=12, cycles=64_210)
    est.energy_uj, est.windows[0].avg_uw, est.assumptions

Inputs per block (`BlockInput`): logic cells, block RAMs and DSPs attributed to the block, and
its activity (toggles per signal bit per cycle, the fraction of cycles its block RAMs are
accessed, the toggle rate of its multiplier operands) during the inference and while idle.
`estimate_design(...)` gathers them for a build: cells from the design's netlist
(`block_cells`, the flip-flop split of boards/resources.py, scaled to the placed total when a
synthesis result is at hand), activity from one simulated inference (sim/activity.py), cycles
from the schedule model (sim/schedule.py `predict`, exact against the RTL).

The model, per block b at clock f (MHz) and core supply V:
  logic  P = V * K_LC * f * cells_b * (toggle_rate_b / A_LC)      (scaled by activity)
  EBR    P = E_EBR * f * ebrs_b * ebr_duty_b                      (pJ x MHz = uW)
  DSP    P = V * K_DSP * f * dsps_b * (operand_rate_b / A_DSP)
and for the whole device: clock tree V * K_CLK * f while the clock runs, static power always.

Figures (typical, 25 C) and where they come from:

| symbol | value | source |
|---|---|---|
| V (VCC) | 1.2 V | Lattice iCE40 UltraPlus Family Data Sheet FPGA-DS-02008 (formerly DS1056) v1.9, Table 4.2 (1.14-1.26 V) |
| I_STATIC core | 75 uA | same, Table 4.6 ICCSTDBY, blank pattern, f = 0 |
| I_STATIC I/O | 0.5 + 0.5 + 0.55 uA at 3.3 V | same, Table 4.6 ICCIOSTDBY, ISPI_VCCIO1STDBY, IPP2V5STDBY |
| K_CLK | 43.6 uA/MHz | tinyvision-ai-inc/ice40_power (UP5K, Joulescope, core rail at 1.219 V): external 12 MHz clock + 28-bit counter 613.5 uA, blank design 85.6 uA; (613.5 - 85.6 - 32 x K_LC x 12) / 12 |
| K_LC | 0.01182 uA/MHz per logic cell at A_LC | same: 28-bit counters, 32 -> 228 LCs at 12 MHz, 613.5 -> 641.3 uA: (641.3 - 613.5) / 196 / 12 |
| A_LC | 0.0714 toggles/bit/cycle | a binary counter's mean toggle rate, (2 - 2^-27) / 28 |
| K_DSP | 16.8 uA/MHz per SB_MAC16 at A_DSP | same: HFOSC 12 MHz, 8x8 product of counters +3 / +5 in one DSP (72 LCs) 882 uA, counter alone (28 LCs) 645 uA; minus the 44 extra LCs at their activity: (237 - 44 x K_LC x 12 x A_DSP / A_LC) / 12 |
| A_DSP | 0.402 toggles/bit/cycle | the operands of that test: 8-bit counters stepping by 3 and 5 |
| E_EBR | 2 pJ per access per SB_RAM40_4K | ASSUMPTION: no published iCE40 block-RAM energy was found (Lattice's Power Calculator keeps its coefficients inside Radiant / iCEcube2); about ten logic-cell toggles at K_LC, the order of a small 40-nm SRAM macro's access |
| I_PLL | 138.6 uA | tinyvision: PLL rail with the PLL running (only with --pll-mhz) |

The measured currents (1.219 V) are used unchanged at 1.2 V (C V f scaling would lower the
dynamic ones by 1.6 %). Everything not listed is left out: I/O switching, the board
(FTDI, LEDs, regulators, oscillator, flash), temperature and process spread.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from math import isfinite

from ..errors import UserError
from ..quant.export_types import ExportLike, as_export


class PowerError(UserError):
    pass


# ---------------------------------------------------------------- figures

# tinyvision-ai-inc/ice40_power README (iCE40 UltraPlus breakout board, core rail, uA at 1.219 V)
TINYVISION = {
    "blank": 85.6,
    "ext12_counter_32lc": 613.5,
    "ext12_counter_228lc": 641.3,
    "hfosc12_counter_28lc": 645.0,
    "hfosc12_math_1dsp_72lc": 882.0,
    "pll_rail": 138.6,
}


def _counter_toggles(step: int, bits: int) -> float:
    """Mean bits changed per cycle by a `bits`-wide counter adding `step` (odd: full period)."""
    n = 1 << bits
    return sum(bin(x ^ ((x + step) % n)).count("1") for x in range(n)) / n


@dataclass(frozen=True)
class Figures:
    part: str
    vcc: float                  # V
    static_core_ua: float       # at vcc
    static_io_ua: float         # at vccio
    vccio: float
    k_clock: float              # uA/MHz, the clock tree with the clock running
    k_lc: float                 # uA/MHz per logic cell at a_lc
    a_lc: float                 # toggles per bit per cycle of the K_LC measurement
    k_dsp: float                # uA/MHz per DSP at a_dsp
    a_dsp: float                # operand toggles per bit per cycle of the K_DSP measurement
    e_ebr_pj: float             # pJ per block RAM access (assumption)
    e_spram_pj: float           # pJ per SB_SPRAM256KA access (assumption)
    pll_ua: float               # PLL rail when the PLL runs
    sources: tuple = ()

    @property
    def static_uw(self) -> float:
        return self.vcc * self.static_core_ua + self.vccio * self.static_io_ua


def _up5k() -> Figures:
    t = TINYVISION
    mhz = 12.0
    lc_slope = (t["ext12_counter_228lc"] - t["ext12_counter_32lc"]) / (228 - 32)   # uA/LC
    a_lc = (2 - 2.0 ** -27) / 28
    a_dsp = (_counter_toggles(3, 8) + _counter_toggles(5, 8)) / 16
    k_clock = (t["ext12_counter_32lc"] - t["blank"] - 32 * lc_slope) / mhz
    dsp_ua = (t["hfosc12_math_1dsp_72lc"] - t["hfosc12_counter_28lc"]
              - (72 - 28) * lc_slope * a_dsp / a_lc)
    return Figures(
        part="iCE40UP5K", vcc=1.2, static_core_ua=75.0, static_io_ua=0.5 + 0.5 + 0.55,
        vccio=3.3, k_clock=k_clock, k_lc=lc_slope / mhz, a_lc=a_lc, k_dsp=dsp_ua / mhz,
        a_dsp=a_dsp, e_ebr_pj=2.0, e_spram_pj=8.0, pll_ua=t["pll_rail"],
        sources=("Lattice FPGA-DS-02008 (DS1056) iCE40 UltraPlus Family Data Sheet v1.9, "
                 "Tables 4.2 and 4.6",
                 "github.com/tinyvision-ai-inc/ice40_power (UP5K rail currents, Joulescope JS110)"))


FIGURES = {"iCE40UP5K": _up5k()}


def figures_for(board) -> Figures:
    """The figures for a board name, a device part or a BoardSpec; PowerError if none."""
    from .platforms import BOARDS, DEVICES

    if isinstance(board, Figures):
        return board
    part = getattr(board, "part", None)
    name = getattr(board, "name", board)
    if part is None:
        key = str(name)
        if key.lower() in BOARDS:
            part = BOARDS[key.lower()].part
        elif key in DEVICES or key in FIGURES:
            part = key
        else:
            raise PowerError(f"unknown board {name!r}: energy figures exist for "
                             f"{', '.join(FIGURES)} (board icebreaker)")
    if part not in FIGURES:
        raise PowerError(f"no energy figures for {name} ({part}): published figures are used "
                         f"for {', '.join(FIGURES)} only (board icebreaker)")
    return FIGURES[part]


# ---------------------------------------------------------------- the model

@dataclass(frozen=True)
class BlockInput:
    name: str
    cells: float                      # logic cells (LUT4 + flip-flop) of the block
    toggle_rate: float                # during the inference: toggles per signal bit per cycle
    ebrs: int = 0                     # SB_RAM40_4K blocks
    ebr_duty: float = 0.0             # fraction of cycles they are accessed
    dsps: int = 0                     # SB_MAC16
    dsp_toggle_rate: float = 0.0      # toggles per multiplier-operand bit per cycle
    idle_toggle_rate: float = 0.0     # the same three while the accelerator waits
    idle_ebr_duty: float = 0.0
    idle_dsp_toggle_rate: float = 0.0
    bits: int = 0                     # signal bits the toggle rate is measured on
    sprams: int = 0                   # SB_SPRAM256KA (rtl/spram.py)
    spram_duty: float = 0.0           # fraction of cycles they are accessed
    idle_spram_duty: float = 0.0


@dataclass
class BlockPower:
    name: str
    cells: float
    ebrs: int
    dsps: int
    toggle_rate: float
    logic_uw: float
    ebr_uw: float
    dsp_uw: float
    idle_uw: float
    sprams: int = 0
    spram_uw: float = 0.0

    @property
    def uw(self) -> float:
        return self.logic_uw + self.ebr_uw + self.dsp_uw + self.spram_uw


@dataclass
class Window:
    label: str
    seconds: float
    duty: float                       # inference time / window
    avg_uw: float                     # as built: the clock keeps running between inferences
    avg_uw_gated: float               # the clock stopped between inferences (static only)
    fits: bool                        # one inference (and its UART transfer, if known) fits


@dataclass
class EnergyEstimate:
    board: str
    part: str
    clock_mhz: float
    cycles: float
    seconds: float                    # per inference
    static_uw: float
    clock_uw: float
    pll_uw: float
    blocks: list
    dynamic_uw: float                 # the blocks during the inference
    active_uw: float                  # static + clock (+ PLL) + blocks
    idle_uw: float                    # static + clock (+ PLL) + the blocks' idle power
    energy_uj: float                  # active_uw x seconds
    dynamic_energy_uj: float          # (clock + blocks) x seconds
    windows: list
    uart_seconds: float | None
    assumptions: list = field(default_factory=list)
    figures: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        for b, bp in zip(d["blocks"], self.blocks):
            b["uw"] = bp.uw
        return d


def _check(value, what: str, positive: bool = False):
    if not isinstance(value, (int, float)) or not isfinite(value) or value < 0 or (
            positive and value == 0):
        raise PowerError(f"{what} must be a {'positive' if positive else 'non-negative'} "
                         f"number, not {value!r}")


def estimate(board, blocks: list[BlockInput], clock_mhz: float, cycles: float,
             pll: bool = False, uart_seconds: float | None = None,
             windows: tuple = (("1 s", 1.0), ("100-ms hop", 0.1)),
             assumptions: tuple = ()) -> EnergyEstimate:
    """The energy of one inference and the average power of one inference per window."""
    fig = figures_for(board)
    _check(clock_mhz, "the clock frequency (MHz)", positive=True)
    _check(cycles, "the cycles per inference", positive=True)
    if not blocks:
        raise PowerError("no blocks to estimate")
    V, f = fig.vcc, float(clock_mhz)
    out = []
    for b in blocks:
        for what in ("cells", "toggle_rate", "ebr_duty", "dsp_toggle_rate", "idle_toggle_rate",
                     "idle_ebr_duty", "idle_dsp_toggle_rate", "ebrs", "dsps", "sprams",
                     "spram_duty", "idle_spram_duty"):
            _check(getattr(b, what), f"{b.name}: {what}")

        def power(rate, duty, dsp_rate, spram_duty):
            logic = V * fig.k_lc * f * b.cells * rate / fig.a_lc
            ebr = fig.e_ebr_pj * f * b.ebrs * duty
            dsp = V * fig.k_dsp * f * b.dsps * dsp_rate / fig.a_dsp
            spram = fig.e_spram_pj * f * b.sprams * spram_duty
            return logic, ebr, dsp, spram

        logic, ebr, dsp, spram = power(b.toggle_rate, b.ebr_duty, b.dsp_toggle_rate,
                                       b.spram_duty)
        idle = sum(power(b.idle_toggle_rate, b.idle_ebr_duty, b.idle_dsp_toggle_rate,
                         b.idle_spram_duty))
        out.append(BlockPower(b.name, b.cells, b.ebrs, b.dsps, b.toggle_rate, logic, ebr, dsp,
                              idle, b.sprams, spram))
    seconds = cycles / (f * 1e6)
    static = fig.static_uw
    clock = V * fig.k_clock * f
    pll_uw = V * fig.pll_ua if pll else 0.0
    dynamic = sum(b.uw for b in out)
    active = static + clock + pll_uw + dynamic
    idle = static + clock + pll_uw + sum(b.idle_uw for b in out)
    energy = active * seconds
    wins = []
    for label, w in windows:
        _check(w, f"the window '{label}' (s)", positive=True)
        busy = seconds + (uart_seconds or 0.0)
        wins.append(Window(label, w, seconds / w,
                           (energy + idle * max(0.0, w - seconds)) / w,
                           (energy + static * max(0.0, w - seconds)) / w,
                           busy <= w))
    fixed = [
        f"an ESTIMATE from published figures and simulated activity, not a measurement "
        f"({fig.part}, typical silicon, 25 C)",
        f"core supply {V:g} V (datasheet nominal); static {fig.static_core_ua:g} uA core + "
        f"{fig.static_io_ua:g} uA I/O at {fig.vccio:g} V (FPGA-DS-02008 Table 4.6, blank "
        f"pattern)",
        f"clock tree {fig.k_clock:.1f} uA/MHz, paid whenever the clock runs, also between "
        f"inferences unless the clock is stopped (tinyvision-ai ice40_power)",
        f"logic {fig.k_lc * 1000:.2f} nA/MHz per logic cell at {fig.a_lc:.4f} toggles/bit/cycle "
        f"(a binary counter, tinyvision-ai ice40_power), scaled by each block's simulated toggle "
        f"rate over that reference",
        f"DSP {fig.k_dsp:.1f} uA/MHz per SB_MAC16 at {fig.a_dsp:.3f} operand toggles/bit/cycle "
        f"(tinyvision-ai 8x8 product test), scaled by the simulated operand toggle rate",
        f"block RAM {fig.e_ebr_pj:g} pJ per access per SB_RAM40_4K: an ASSUMPTION (no published "
        f"iCE40 figure found); a block RAM whose read port is enabled reads every cycle",
        "zero-delay simulation: no glitches; only named signals are observed (a proxy for the "
        "LUT and routing nets, which synthesis renames and merges)",
        "measured currents (1.219 V) used unchanged at 1.2 V; I/O switching and the board "
        "(FTDI, LEDs, regulators, oscillator, flash) left out",
    ]
    spram_uw = sum(b.spram_uw for b in out)
    if any(b.sprams for b in out):
        fixed.append(f"single-port RAM {fig.e_spram_pj:g} pJ per access per SB_SPRAM256KA: an "
                     f"ASSUMPTION (no published figure found; 4x a block RAM access for a "
                     f"64x larger array); {spram_uw / active:.0%} of the power during the "
                     f"inference")
    ebr_uw = sum(b.ebr_uw for b in out)
    if ebr_uw:
        fixed.append(f"sensitivity to the block RAM assumption: {ebr_uw / active:.0%} of the "
                     f"power during the inference; at {fig.e_ebr_pj / 4:g} / {fig.e_ebr_pj * 4:g} "
                     f"pJ per access the energy per inference would be "
                     f"{(energy - 0.75 * ebr_uw * seconds):,.2f} / "
                     f"{(energy + 3 * ebr_uw * seconds):,.2f} uJ")
    logic_uw = sum(b.logic_uw for b in out)
    unscaled = sum(V * fig.k_lc * f * b.cells for b in out)
    if logic_uw:
        fixed.append(f"sensitivity to the activity scaling: were the per-cell figure all clock "
                     f"load (paid by every cell every cycle, not scaled by toggles), logic would "
                     f"take {unscaled:,.0f} uW instead of {logic_uw:,.0f} uW during the "
                     f"inference")
    if pll:
        fixed.append(f"PLL rail {fig.pll_ua:g} uA while it runs (tinyvision-ai)")
    if uart_seconds is not None:
        fixed.append(f"the UART moves one inference's features and result in "
                     f"{uart_seconds * 1e3:,.0f} ms; a window shorter than that plus the "
                     f"inference cannot be kept up over this link (marked), the average assumes "
                     f"the features are there")
    figures = {k: v for k, v in asdict(fig).items()}
    return EnergyEstimate(
        board=fig.part if isinstance(board, Figures) else str(getattr(board, "name", board)),
        part=fig.part, clock_mhz=f, cycles=float(cycles), seconds=seconds, static_uw=static,
        clock_uw=clock, pll_uw=pll_uw, blocks=out, dynamic_uw=dynamic, active_uw=active,
        idle_uw=idle, energy_uj=energy, dynamic_energy_uj=(active - static) * seconds,
        windows=wins, uart_seconds=uart_seconds, assumptions=fixed + list(assumptions),
        figures=figures)


# ---------------------------------------------------------------- blocks of the design

BUFFERS = "buffers"           # the activation memories (rtl/buffers.py), submodules of the top
BUFFER_MEMORIES = frozenset({"xbuf", "bbuf", "xmask", "bmask", "dmem"})
CONTROL = "control"           # the top's own logic: run control, credits, counter feeds
BOARD = "uart+framing"        # boards/top.py around the accelerator (not simulated)
# the multiplier operands per block: signals whose toggles drive the SB_MAC16 inputs
DSP_OPERANDS = {"pes": ("w", "a")}
# ... and where the lanes' DSPs are instantiated (rtl/mac16.py), each DSP's own input registers:
# a DSP whose turn it is not holds them, so its multiplier does not switch
DSP_LANE_OPERANDS = ("ra", "rb")


def _clean(part: str) -> str:
    return re.sub(r"\$\d+$", "", part)


def block_of(path: tuple, root: tuple) -> str:
    """The block of a module / scope path below the accelerator's root path."""
    path = tuple(_clean(p) for p in path)
    if path[:len(root)] != tuple(root):
        return BOARD
    rest = path[len(root):]
    if not rest:
        return CONTROL
    return BUFFERS if rest[0] in BUFFER_MEMORIES else rest[0]


@dataclass
class BlockCells:
    name: str
    ffs: int = 0
    rom_logic_bits: int = 0
    cells: float = 0.0
    ebrs: int = 0
    dsps: int = 0
    memories: dict = field(default_factory=dict)    # path below the root ("fetch/wmem") -> blocks
    sprams: int = 0
    spram_memories: dict = field(default_factory=dict)   # path -> SB_SPRAM256KA


def block_cells(component, family: str = "ice40", placed_cells: int | None = None) -> dict:
    """Logic cells, block RAMs and DSPs per block of a design (the board core or the bare
    accelerator), from its netlist with the rules of boards/resources.py: block RAMs and DSPs
    exact, logic cells the live flip-flop bits (memories in flip-flops included) times the
    middle calibration factor plus ROM bits in LUTs, scaled so the blocks add up to
    `placed_cells` when a placed total is given."""
    from amaranth.hdl import _nir

    from . import resources as R

    nl = R.core_netlist(component)
    live = R._live_bits(nl)
    modules = [tuple(m.name) for m in nl.modules]
    root = ("top", "accel") if ("top", "accel") in modules else ("top",)
    out: dict = defaultdict(lambda: BlockCells(""))

    def get(path):
        name = block_of(path, root)
        b = out[name]
        b.name = name
        return b

    for index, bits in live.items():
        cell = nl.cells[index]
        path = modules[cell.module_idx] if hasattr(cell, "module_idx") else ()
        if isinstance(cell, _nir.FlipFlop):
            get(path).ffs += len(bits) * R.flip_flop_weight(cell)
        elif isinstance(cell, _nir.Operator) and cell.operator == "*":
            get(path).dsps += R._dsps_for(cell, family)
    for mem in R._memories(nl, live):
        path = tuple(mem.name.split("."))
        b = get(path)
        rel = "/".join(_clean(p) for p in path[len(root):])
        if mem.spram:
            b.sprams += 1
            b.spram_memories[rel] = 1
            continue
        m = R._map_memory(mem, family)
        if m["mapping"] == "logic":
            if mem.rom:
                b.rom_logic_bits += m["logic_bits"]
            else:
                b.ffs += m["logic_bits"]
        else:
            b.ebrs += m["blocks"]
            b.memories[rel] = m["blocks"]
    factor = R.CALIBRATION[family][1]
    for b in out.values():
        b.cells = factor * b.ffs + R.ROM_LOGIC * b.rom_logic_bits
    total = sum(b.cells for b in out.values())
    if placed_cells and total:
        for b in out.values():
            b.cells *= placed_cells / total
    return dict(out)


def block_inputs(cells: dict, activity) -> list[BlockInput]:
    """BlockInputs from `block_cells` and a simulated `sim.activity.Activity`: per block the
    toggles per signal bit per cycle, the block RAMs' access duty (the largest port-enable
    duty of each memory: a read port enabled every cycle reads every cycle) and the DSP
    operands' toggle rate, for the inference ("active") and the idle stretch."""
    root = ("top",)
    acc = defaultdict(lambda: {"bits": 0, "t": defaultdict(float), "dsp_bits": 0,
                               "dsp_t": defaultdict(float), "lane_bits": 0,
                               "lane_t": defaultdict(float)})
    mem_duty: dict = defaultdict(lambda: defaultdict(float))     # memory path -> window -> duty
    windows = activity.cycles
    for scope, name, width, toggles, high in activity.signals:
        path = tuple(scope.split("/"))
        block = block_of(path, root)
        a = acc[block]
        a["bits"] += width
        for w, n in toggles.items():
            a["t"][w] += n
        rel = "/".join(_clean(p) for p in path[len(root):])
        if rel and block in DSP_OPERANDS and rel == block and name in DSP_OPERANDS[block]:
            a["dsp_bits"] += width
            for w, n in toggles.items():
                a["dsp_t"][w] += n
        if block in DSP_OPERANDS and rel.startswith(f"{block}/") and name in DSP_LANE_OPERANDS:
            a["lane_bits"] += width
            for w, n in toggles.items():
                a["lane_t"][w] += n
        if width == 1 and re.search(r"(^|_)en(\$\d+)?$", name):
            for w, h in high.items():
                mem_duty[rel][w] = max(mem_duty[rel][w], h / windows[w] if windows[w] else 0)
    out = []
    for name in sorted(set(cells) | set(acc)):
        c = cells.get(name, BlockCells(name))
        a = acc.get(name)

        def rate(w, key="t", bits="bits"):
            if a is None or not a[bits] or not windows.get(w):
                return 0.0
            return a[key][w] / (a[bits] * windows[w])

        def duty(w, memories=c.memories, blocks=c.ebrs):
            if not blocks:
                return 0.0
            return sum(n * mem_duty.get(mem, {}).get(w, 1.0)
                       for mem, n in memories.items()) / blocks

        def spram_duty(w):
            return duty(w, c.spram_memories, c.sprams)

        dsp_key = (("lane_t", "lane_bits") if a and a["lane_bits"] else
                   ("dsp_t", "dsp_bits") if a and a["dsp_bits"] else ("t", "bits"))
        out.append(BlockInput(name, c.cells, rate("active"), c.ebrs, duty("active"), c.dsps,
                              rate("active", *dsp_key) if c.dsps else 0.0,
                              rate("idle"), duty("idle"),
                              rate("idle", *dsp_key) if c.dsps else 0.0,
                              a["bits"] if a else 0, c.sprams, spram_duty("active"),
                              spram_duty("idle")))
    return out


# ---------------------------------------------------------------- for a build

def uart_seconds(model: ExportLike, baud: int, record_words: int) -> float:
    """Time the UART needs for one inference: the INFER frame in and the RESULT frame out,
    10 bits a byte."""
    from .protocol import HEADER_LEN, infer_length
    model = as_export(model)
    frame_in = infer_length(model.features, model.frames)
    frame_out = HEADER_LEN + 4 * record_words + 1
    return 10 * (frame_in + frame_out) / baud


def estimate_design(model: dict, hw, spec, clips, make_core=None, placed_cells: int | None = None,
                    baud: int | None = None, refresh: bool = False) -> EnergyEstimate:
    """The estimate for one design on a board: cycles from the schedule model (the mean over
    `clips`), activity from simulating the first clip (cached), cells per block from the
    board core's netlist (`make_core()`; the bare accelerator without it), scaled to
    `placed_cells` when given."""
    import numpy as np

    from ..rtl.record import record_fields
    from ..sim.activity import run_activity
    from ..sim.schedule import predict

    fig = figures_for(spec)                         # unknown board: PowerError before any work
    clips = np.asarray(clips)
    if clips.ndim == 2:
        clips = clips[None]
    if not len(clips):
        raise PowerError("no clips to estimate on")
    cycles = float(np.mean([predict(model, hw, c)["cycles"] for c in clips]))
    act = run_activity(model, hw, clips[0], refresh=refresh)
    if make_core is not None:
        core = make_core()
    else:
        from ..rtl.top import SparkNetAccelerator
        core = SparkNetAccelerator(model, hw)
    cells = block_cells(core, "ice40", placed_cells)
    blocks = block_inputs(cells, act)
    uart = uart_seconds(model, baud, len(record_fields(model))) if baud else None
    notes = [
        f"activity: one real clip (shipped test clip 0) simulated in Amaranth's simulator, "
        f"{act.cycles['active']:,.0f} cycles of the inference (the hardware counted "
        f"{act.record_cycles:,}) and {act.cycles['idle']:,.0f} idle cycles after it; cycles per "
        f"inference: the schedule model, mean of {len(clips)} clip(s)",
        "cells per block: live flip-flop bits x the resource estimate's factor "
        "(boards/resources.py), "
        + ("scaled to the placed total of " + f"{placed_cells:,}" if placed_cells
           else "not placed: the pre-synthesis estimate"),
        f"{BOARD}: cells only, not simulated; idle during the inference (the features are in, "
        f"the result not yet out), so no toggles",
    ]
    return estimate(spec, blocks, spec.clock_mhz, cycles,
                    pll=getattr(spec, "pll", None) is not None, uart_seconds=uart,
                    assumptions=tuple(notes))


# ---------------------------------------------------------------- reports

def _as_dict(est) -> dict:
    return est.to_dict() if isinstance(est, EnergyEstimate) else est


def format_energy(est, title: str | None = None) -> str:
    """The table `bench --energy` prints (an EnergyEstimate or its to_dict())."""
    e = _as_dict(est)
    blocks = sorted(e["blocks"], key=lambda b: -b["uw"])
    # the single-port RAM columns only for a design that has them
    sp = any(b.get("sprams") for b in blocks)
    lines = [title or f"energy ESTIMATE per inference, {e['board']} ({e['part']}) at "
                      f"{e['clock_mhz']:g} MHz, {e['cycles']:,.0f} cycles = "
                      f"{e['seconds'] * 1e3:,.2f} ms",
             f"{'block':<14}{'cells':>8}{'EBR':>5}{'DSP':>5}" + (f"{'SPR':>5}" if sp else "")
             + f"{'toggle':>9}{'logic':>9}{'EBR':>9}{'DSP':>9}" + (f"{'SPRAM':>9}" if sp else "")
             + f"{'total uW':>10}{'idle uW':>9}"]
    rule = "-" * len(lines[-1])
    lines.append(rule)
    for b in blocks:
        lines.append(f"{b['name']:<14}{b['cells']:>8,.0f}{b['ebrs']:>5}{b['dsps']:>5}"
                     + (f"{b.get('sprams', 0):>5}" if sp else "")
                     + f"{b['toggle_rate']:>9.4f}{b['logic_uw']:>9.1f}{b['ebr_uw']:>9.1f}"
                     f"{b['dsp_uw']:>9.1f}" + (f"{b.get('spram_uw', 0.0):>9.1f}" if sp else "")
                     + f"{b['uw']:>10.1f}{b['idle_uw']:>9.1f}")
    lines.append(rule)

    def total(key):
        return sum(b.get(key, 0) for b in blocks)

    lines.append(f"{'blocks':<14}{total('cells'):>8,.0f}{total('ebrs'):>5}{total('dsps'):>5}"
                 + (f"{total('sprams'):>5}" if sp else "")
                 + f"{'':>9}{total('logic_uw'):>9.1f}{total('ebr_uw'):>9.1f}"
                 f"{total('dsp_uw'):>9.1f}" + (f"{total('spram_uw'):>9.1f}" if sp else "")
                 + f"{e['dynamic_uw']:>10.1f}{total('idle_uw'):>9.1f}")
    pad = 59 + (14 if sp else 0)
    for label, key in (("clock tree", "clock_uw"), ("PLL", "pll_uw"), ("static", "static_uw")):
        if e[key] or key != "pll_uw":
            lines.append(f"{label:<{pad}}{e[key]:>10.1f}{e[key]:>9.1f}")
    lines.append(f"{'device':<{pad}}{e['active_uw']:>10.1f}{e['idle_uw']:>9.1f}")
    lines.append("")
    lines.append(f"energy per inference: {e['energy_uj']:,.2f} uJ ({e['dynamic_energy_uj']:,.2f} "
                 f"uJ dynamic: clock tree and blocks; {e['active_uw'] / 1e3:,.2f} mW for "
                 f"{e['seconds'] * 1e3:,.2f} ms)")
    for w in e["windows"]:
        lines.append(f"one inference per {w['label']}: duty {w['duty']:.2%}, average "
                     f"{w['avg_uw']:,.0f} uW with the clock running between inferences (as "
                     f"built), {w['avg_uw_gated']:,.0f} uW with it stopped"
                     + ("" if w["fits"] else " -- NOT sustainable over the UART"))
    lines.append("")
    lines.append("cells = logic cells attributed to the block; toggle = toggles per signal bit "
                 "per cycle in the inference; uW while the inference runs; idle = while the "
                 "accelerator waits (a block RAM with an enabled read port keeps reading)")
    lines.append("assumptions:")
    lines += [f"  - {a}" for a in e["assumptions"]]
    return "\n".join(lines)


def energy_markdown(est) -> str:
    """The report.md section of a build (an EnergyEstimate or its to_dict())."""
    e = _as_dict(est)
    lines = ["## Energy per inference (ESTIMATE)", "",
             f"{e['board']} ({e['part']}) at {e['clock_mhz']:g} MHz: {e['cycles']:,.0f} cycles "
             f"= {e['seconds'] * 1e3:,.2f} ms. **{e['energy_uj']:,.2f} uJ per inference** "
             f"({e['dynamic_energy_uj']:,.2f} uJ of it dynamic). Not a measurement: published "
             f"figures x simulated activity (boards/power.py, docs/power.md).", "",
             "| block | cells | EBR | DSP | toggles/bit/cycle | uW (inference) | uW (idle) |",
             "|---|---|---|---|---|---|---|"]
    for b in sorted(e["blocks"], key=lambda b: -b["uw"]):
        spram = f" + {b['sprams']} SPRAM" if b.get("sprams") else ""
        lines.append(f"| {b['name']} | {b['cells']:,.0f} | {b['ebrs']}{spram} | {b['dsps']} | "
                     f"{b['toggle_rate']:.4f} | {b['uw']:,.1f} | {b['idle_uw']:,.1f} |")
    for label, key in (("clock tree", "clock_uw"), ("PLL", "pll_uw"), ("static", "static_uw")):
        if e[key] or key != "pll_uw":
            lines.append(f"| {label} | | | | | {e[key]:,.1f} | {e[key]:,.1f} |")
    lines.append(f"| **device** | | | | | **{e['active_uw']:,.1f}** | **{e['idle_uw']:,.1f}** |")
    lines += ["", "| one inference per | duty | average uW, clock running | average uW, clock "
              "stopped between inferences |", "|---|---|---|---|"]
    for w in e["windows"]:
        lines.append(f"| {w['label']} | {w['duty']:.2%} | {w['avg_uw']:,.0f}"
                     f"{'' if w['fits'] else ' (not sustainable over the UART)'} | "
                     f"{w['avg_uw_gated']:,.0f} |")
    lines += ["", "Assumptions:", ""] + [f"- {a}" for a in e["assumptions"]]
    return "\n".join(lines) + "\n"
