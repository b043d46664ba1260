"""SinglePortBuffer (rtl/spram.py): the behaviour of the UltraPlus single-port RAM that the
simulations use, and the SB_SPRAM256KA instances it becomes on an UltraPlus platform."""
import random

from amaranth.hdl import Fragment, Instance
from amaranth.sim import Simulator

from sparknet_hw.rtl.spram import SinglePortBuffer, power_up_pattern


def test_writes_read_back_and_a_collision_is_flagged():
    dut = SinglePortBuffer(depth=300, width=40)          # three 16-bit slices
    assert dut.n_sprams == 3
    rng = random.Random(5)
    pattern = power_up_pattern(300)

    async def bench(ctx):
        # not zero at power-up: a design must not read before it writes
        ctx.set(dut.rd.addr, 7)
        ctx.set(dut.rd.en, 1)
        await ctx.tick()
        expect = sum(pattern[7] << (16 * i) for i in range(3)) & ((1 << 40) - 1)
        assert ctx.get(dut.rd.data) == expect != 0
        model = {}
        for _ in range(400):
            addr, data = rng.randrange(300), rng.getrandbits(40)
            ctx.set(dut.rd.en, 0)
            ctx.set(dut.wr.addr, addr)
            ctx.set(dut.wr.data, data)
            ctx.set(dut.wr.en, 1)
            assert not ctx.get(dut.collision)
            await ctx.tick()
            model[addr] = data
        ctx.set(dut.wr.en, 0)
        for addr, data in model.items():
            ctx.set(dut.rd.addr, addr)
            ctx.set(dut.rd.en, 1)
            await ctx.tick()
            assert ctx.get(dut.rd.data) == data, addr
        # a read in a write cycle: the write happens, the read data holds (the SPRAM's
        # no-change read-during-write), and the buffer says so
        a, b = sorted(model)[:2]
        ctx.set(dut.rd.addr, a)
        await ctx.tick()
        held = ctx.get(dut.rd.data)
        ctx.set(dut.rd.addr, b)
        ctx.set(dut.wr.addr, b)
        ctx.set(dut.wr.data, 12345)
        ctx.set(dut.wr.en, 1)
        assert ctx.get(dut.collision)
        await ctx.tick()
        assert ctx.get(dut.rd.data) == held
        ctx.set(dut.wr.en, 0)
        await ctx.tick()
        assert ctx.get(dut.rd.data) == 12345

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


class _UltraPlus:
    device = "iCE40UP5K"


def _instances(fragment):
    found = []
    for sub, *_ in fragment.subfragments:
        if isinstance(sub, Instance):
            found.append(sub)
        else:
            found += _instances(sub)
    return found


def test_an_ultraplus_platform_gets_sb_spram256ka_instances():
    frag = Fragment.get(SinglePortBuffer(depth=808, width=32), _UltraPlus())
    prims = _instances(frag)
    assert [p.type for p in prims] == ["SB_SPRAM256KA"] * 2
    assert not _instances(Fragment.get(SinglePortBuffer(depth=808, width=32), None))
