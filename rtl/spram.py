"""A single-port RAM for an activation buffer: the iCE40 UltraPlus SB_SPRAM256KA.

The UP5K has four 16K x 16 single-port RAMs beside its 30 block RAMs. A buffer that is only
written or only read in any one cycle fits them: within a pass the accelerator reads its input
buffer and writes the other one. `SinglePortBuffer` presents the read and write ports of a
two-port memory (so `rtl/buffers.py` swaps it in) over one address: a cycle with a write
writes, a cycle with a read enable reads, and both at once is a `collision` (the read is
lost). The accelerator reports any collision, and the simulations check that none happens.

On an UltraPlus platform each 16-bit slice is an SB_SPRAM256KA instance; otherwise (Amaranth
simulator, the Verilog cocotb simulates, the resource estimate) it is `SPRAMModel`, the
primitive's behaviour for the ports used here, as Yosys' simulation model of the cell
(share/ice40/cells_sim.v) has it: registered read; after a write cycle the output is
undefined (here a pattern, CLOBBER); contents undefined at power-up (here a pattern, not
zero). A design that used either would compute with a pattern instead of data (where it
matters, the bit-exact checks see it), not with the zeros a block RAM would give.
"""
from __future__ import annotations

from amaranth.hdl import Cat, ClockSignal, Instance, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory, ReadPort, WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

SPRAM_DEPTH, SPRAM_WIDTH = 16384, 16
SPRAM_MARK = "sparknet_spram"    # attribute on the model's memory (the resource estimate)
CLOBBER = 0xDEAD                 # the model's output after a write cycle (the cell's is X)


def sprams_for(width: int) -> int:
    """SB_SPRAM256KA instances side by side for a `width`-bit buffer (16 bits each)."""
    return -(-width // SPRAM_WIDTH)


def is_ultraplus(platform) -> bool:
    return str(getattr(platform, "device", "")).startswith("iCE40UP")


def power_up_pattern(depth: int) -> list[int]:
    """Contents the model starts with: not zero, different per word."""
    return [(0xA5C3 ^ (addr * 0x9E37)) & 0xFFFF for addr in range(depth)]


class SPRAMModel(wiring.Component):
    """One SB_SPRAM256KA as this design drives it (MASKWREN all ones, never asleep), `depth`
    words deep instead of 16K so that simulation stays small."""

    def __init__(self, depth: int):
        self.depth = depth
        super().__init__({
            "address": In(ceil_log2(max(depth, 2))),
            "datain": In(SPRAM_WIDTH),
            "wren": In(1),
            "chipselect": In(1),
            "dataout": Out(SPRAM_WIDTH),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=unsigned(SPRAM_WIDTH), depth=self.depth,
                                        init=power_up_pattern(self.depth),
                                        attrs={SPRAM_MARK: "1"})
        rd, wr = mem.read_port(), mem.write_port()
        write = self.chipselect & self.wren
        clobbered = Signal()
        with m.If(self.chipselect):
            m.d.sync += clobbered.eq(self.wren)
        m.d.comb += [rd.addr.eq(self.address), wr.addr.eq(self.address),
                     wr.data.eq(self.datain), wr.en.eq(write),
                     rd.en.eq(self.chipselect & ~self.wren),
                     self.dataout.eq(Mux(clobbered, CLOBBER, rd.data))]
        return m


class SinglePortBuffer(wiring.Component):
    def __init__(self, depth: int, width: int):
        self.depth, self.width = depth, width
        if depth > SPRAM_DEPTH:
            raise ValueError(f"a {depth}-word buffer is deeper than one SPRAM "
                             f"({SPRAM_DEPTH} words)")
        self.n_sprams = sprams_for(width)
        abits = ceil_log2(max(depth, 2))
        super().__init__({
            "rd": Out(ReadPort.Signature(addr_width=abits, shape=unsigned(width))),
            "wr": Out(WritePort.Signature(addr_width=abits, shape=unsigned(width))),
            "collision": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        addr = Signal.like(self.rd.addr)
        m.d.comb += [addr.eq(Mux(self.wr.en, self.wr.addr, self.rd.addr)),
                     self.collision.eq(self.wr.en & self.rd.en)]
        chipselect = self.wr.en | self.rd.en
        address = Signal(ceil_log2(SPRAM_DEPTH))
        m.d.comb += address.eq(addr)
        data = []
        for i in range(self.n_sprams):
            lo, hi = i * SPRAM_WIDTH, min((i + 1) * SPRAM_WIDTH, self.width)
            din = Signal(SPRAM_WIDTH, name=f"din{i}")
            dout = Signal(SPRAM_WIDTH, name=f"dout{i}")
            m.d.comb += din.eq(self.wr.data[lo:hi])
            if is_ultraplus(platform):
                m.submodules[f"spram{i}"] = Instance(
                    "SB_SPRAM256KA",
                    i_ADDRESS=address, i_DATAIN=din,
                    i_MASKWREN=0b1111, i_WREN=self.wr.en, i_CHIPSELECT=chipselect,
                    i_CLOCK=ClockSignal(), i_STANDBY=0, i_SLEEP=0, i_POWEROFF=1,
                    o_DATAOUT=dout)
            else:
                m.submodules[f"spram{i}"] = model = SPRAMModel(self.depth)
                m.d.comb += [model.address.eq(addr), model.datain.eq(din),
                             model.wren.eq(self.wr.en), model.chipselect.eq(chipselect),
                             dout.eq(model.dataout)]
            data.append(dout[:hi - lo])
        m.d.comb += self.rd.data.eq(Cat(*data))
        return m
