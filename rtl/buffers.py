"""The activation storage: the ping-pong buffers X and B with their non-zero mask memories,
and the d memory of the depthwise outputs.

X / B: T frames of `gx` / `gb` words of P lanes; their mask memories hold one bit per lane
(channel) per frame, written a lane group at a time (granularity P). The masks have two read
ports: the 1x1 segments' frame and the depthwise skip window's frames ahead.

With `HwConfig.activation_ram == "spram"`, X and B are single-port RAMs (rtl/spram.py): a
pass only reads one of them and only writes the other, and the reads are enabled only when
an op uses the word (rtl/fetch.py), so a read and a write never meet; `collision` says if
they do.

d memory: two banks (frame parity, or tile parity in frame-parallel passes) of `d_words`
words of P lanes: one word per lane group, or in frame-parallel passes one word of P frames
per channel.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory, ReadPort, WritePort
from amaranth.lib.wiring import Out
from amaranth.utils import ceil_log2

from .config import Plan
from .spram import SinglePortBuffer


def d_words(plan: Plan) -> int:
    """Words of one d memory bank."""
    fdw = any(p.frames for p in plan.passes)
    return max(-(-plan.mask_width // plan.P), plan.C if fdw else 0)


def _depths(plan: Plan) -> dict:
    return {"x": plan.T * plan.gx, "b": plan.T * plan.gb, "xm": plan.T, "bm": plan.T,
            "d": 2 * d_words(plan)}


def _shapes(plan: Plan) -> dict:
    P = plan.P
    return {"x": unsigned(P * plan.lane_bits), "b": unsigned(P * plan.lane_bits),
            "xm": unsigned(plan.gx * P), "bm": unsigned(plan.gb * P),
            "d": unsigned(P * plan.dbits)}


def buffers_signature(plan: Plan) -> wiring.Signature:
    """The buffers' memory ports, from the memories' side (a reader or writer flips one)."""
    depths, shapes = _depths(plan), _shapes(plan)
    gran = {"xm": plan.P, "bm": plan.P}

    def rd(n):
        return Out(ReadPort.Signature(addr_width=ceil_log2(depths[n]), shape=shapes[n]))

    def wr(n):
        return Out(WritePort.Signature(addr_width=ceil_log2(depths[n]), shape=shapes[n],
                                       granularity=gran.get(n)))

    return wiring.Signature({
        "x_rd": rd("x"), "b_rd": rd("b"), "d_rd": rd("d"),
        "xm_rd": rd("xm"), "bm_rd": rd("bm"),
        "xm_rd2": rd("xm"), "bm_rd2": rd("bm"),      # frames ahead, for depthwise skipping
        "x_wr": wr("x"), "b_wr": wr("b"), "d_wr": wr("d"),
        "xm_wr": wr("xm"), "bm_wr": wr("bm"),
        "collision": Out(1),
    })


class ActivationBuffers(wiring.Component):
    def __init__(self, plan: Plan):
        self.plan = plan
        self.depths, self.shapes = _depths(plan), _shapes(plan)
        super().__init__(buffers_signature(plan))

    def elaborate(self, platform):
        m = Module()
        ports = add_memories(m, self.plan)
        m.d.comb += self.collision.eq(ports.pop("collision"))
        for name, port in ports.items():
            wiring.connect(m, wiring.flipped(getattr(self, name)), port)
        return m


def add_memories(m: Module, plan: Plan) -> dict:
    """The buffer memories as submodules of `m` (the top adds them to its own module, so they
    keep their names there, e.g. `accel.xmask` in resource reports); their ports by name."""
    depths, shapes = _depths(plan), _shapes(plan)
    single = ("x", "b") if plan.config.activation_ram == "spram" else ()
    mems = {n: Memory(shape=shapes[n], depth=depths[n], init=[0] * depths[n])
            for n in ("x", "b", "xm", "bm", "d") if n not in single}
    mems.update({n: SinglePortBuffer(depths[n], shapes[n].width) for n in single})
    m.submodules.xbuf, m.submodules.bbuf = mems["x"], mems["b"]
    m.submodules.xmask, m.submodules.bmask = mems["xm"], mems["bm"]
    m.submodules.dmem = mems["d"]
    ports = {}
    for port in ("x_rd", "b_rd", "d_rd", "xm_rd", "bm_rd", "xm_rd2", "bm_rd2"):
        mem = mems[port.split("_")[0]]
        ports[port] = mem.rd if isinstance(mem, SinglePortBuffer) else mem.read_port()
    for port in ("x_wr", "b_wr", "d_wr"):
        mem = mems[port.split("_")[0]]
        ports[port] = mem.wr if isinstance(mem, SinglePortBuffer) else mem.write_port()
    for port in ("xm_wr", "bm_wr"):
        ports[port] = mems[port.split("_")[0]].write_port(granularity=plan.P)
    collision = Signal()
    m.d.comb += collision.eq(Cat(*[mems[n].collision for n in single]).any())
    ports["collision"] = collision
    return ports
