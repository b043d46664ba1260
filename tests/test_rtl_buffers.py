"""ActivationBuffers (rtl/buffers.py): writes through every write port (mask memories a lane
group at a time) read back through every read port, against a dictionary model."""
import random
from dataclasses import replace

import pytest
from amaranth.sim import Simulator

from sparknet_hw.quant.random_export import random_export
from sparknet_hw.rtl.buffers import ActivationBuffers
from sparknet_hw.rtl.config import HwConfig, build_plan


@pytest.mark.parametrize("activation_ram", ["block", "spram"])
def test_buffers_read_back_writes(activation_ram):
    plan = build_plan(random_export(4, seed=8), replace(HwConfig(), activation_ram=activation_ram))
    dut = ActivationBuffers(plan)
    P = plan.P
    rng = random.Random(7)
    mems = {"x": ("x_wr", ["x_rd"]), "b": ("b_wr", ["b_rd"]), "d": ("d_wr", ["d_rd"]),
            "xm": ("xm_wr", ["xm_rd", "xm_rd2"]), "bm": ("bm_wr", ["bm_rd", "bm_rd2"])}

    async def bench(ctx):
        for name, (wr_name, rd_names) in mems.items():
            wr = getattr(dut, wr_name)
            depth, width = dut.depths[name], dut.shapes[name].width
            lanes = len(wr.en)
            # block RAM starts at zero; a single-port RAM's power-up contents are unknown
            spram = activation_ram == "spram" and name in ("x", "b")
            model = [None if spram else 0] * depth
            for _ in range(3 * depth):
                addr, data, en = (rng.randrange(depth), rng.getrandbits(width),
                                  rng.getrandbits(lanes))
                ctx.set(wr.addr, addr)
                ctx.set(wr.data, data)
                ctx.set(wr.en, en)
                await ctx.tick()
                lane = width // lanes
                for j in range(lanes):
                    if (en >> j) & 1:
                        keep = ~(((1 << lane) - 1) << (j * lane))
                        model[addr] = ((model[addr] or 0) & keep) | (data & (((1 << lane) - 1) << (j * lane)))
            ctx.set(wr.en, 0)
            assert lanes == (width // P if name in ("xm", "bm") else 1)
            for rd_name in rd_names:
                rd = getattr(dut, rd_name)
                for addr in (a for a in range(depth) if model[a] is not None):
                    ctx.set(rd.addr, addr)
                    await ctx.tick()                # synchronous read
                    assert ctx.get(rd.data) == model[addr], (rd_name, addr)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
