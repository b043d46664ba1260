"""SinglePortBuffer (rtl/spram.py): the behaviour of the UltraPlus single-port RAM that the
simulations use, and the SB_SPRAM256KA instances it becomes on an UltraPlus platform."""
import random
import shutil

import pytest
from amaranth.hdl import Fragment, Instance
from amaranth.sim import Simulator

from sparknet_hw.rtl.spram import CLOBBER, SinglePortBuffer, power_up_pattern
from sparknet_hw.sim.gate_level import UltraPlus, icarus_output


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
        # a read in a write cycle: the write happens, the read is lost (the cell's output is
        # undefined after a write: the model's is CLOBBER), and the buffer says so
        b = sorted(model)[1]
        ctx.set(dut.rd.addr, b)
        ctx.set(dut.wr.addr, b)
        ctx.set(dut.wr.data, 12345)
        ctx.set(dut.wr.en, 1)
        assert ctx.get(dut.collision)
        await ctx.tick()
        assert ctx.get(dut.rd.data) == sum(CLOBBER << (16 * i) for i in range(3)) % (1 << 40)
        ctx.set(dut.wr.en, 0)
        await ctx.tick()
        assert ctx.get(dut.rd.data) == 12345

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def _instances(fragment):
    found = []
    for sub, *_ in fragment.subfragments:
        if isinstance(sub, Instance):
            found.append(sub)
        else:
            found += _instances(sub)
    return found


def test_an_ultraplus_platform_gets_sb_spram256ka_instances():
    frag = Fragment.get(SinglePortBuffer(depth=808, width=32), UltraPlus())
    prims = _instances(frag)
    assert [p.type for p in prims] == ["SB_SPRAM256KA"] * 2
    assert not _instances(Fragment.get(SinglePortBuffer(depth=808, width=32), None))


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog missing")
def test_the_model_behaves_as_yosys_simulation_model_of_the_cell(tmp_path):
    """The same random reads and writes through the Amaranth model and, in Icarus, through
    the SB_SPRAM256KA instances the UltraPlus build gets with Yosys' own model of the cell:
    equal wherever the cell's output is defined, and undefined (X) exactly where the model
    shows a pattern (after a write cycle, or a word never written)."""
    from amaranth.back import verilog

    depth, width, n = 64, 16, 400
    rng = random.Random(9)
    stim = []
    for _ in range(n):
        wr = rng.random() < 0.4
        stim.append((int(wr), int(not wr and rng.random() < 0.8), rng.randrange(depth),
                     rng.randrange(depth), rng.getrandbits(width)))
    # the reference: what a read returns, or None where the cell's output is undefined
    mem, out, last = {}, [], None
    for wr, rd, waddr, raddr, data in stim:
        if wr:
            mem[waddr], last = data, None
        elif rd:
            last = mem.get(raddr)
        out.append(last)

    dut = SinglePortBuffer(depth, width)
    model_out = []

    async def bench(ctx):
        for wr, rd, waddr, raddr, data in stim:
            for sig, v in ((dut.wr.en, wr), (dut.rd.en, rd), (dut.wr.addr, waddr),
                           (dut.rd.addr, raddr), (dut.wr.data, data)):
                ctx.set(sig, v)
            await ctx.tick()
            model_out.append(ctx.get(dut.rd.data))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()

    cell = SinglePortBuffer(depth, width)
    (tmp_path / "dut.v").write_text(verilog.convert(cell, name="dut", platform=UltraPlus(),
                                                    emit_src=False))
    steps = "\n".join(
        f"    wr__en = {wr}; rd__en = {rd}; wr__addr = {waddr}; rd__addr = {raddr}; "
        f"wr__data = {data}; @(posedge clk); #1 $display(\"%h\", rd__data);"
        for wr, rd, waddr, raddr, data in stim)
    (tmp_path / "tb.v").write_text(f"""
module tb;
  reg clk = 0, rst = 0, wr__en = 0, rd__en = 0;
  reg [5:0] wr__addr = 0, rd__addr = 0;
  reg [15:0] wr__data = 0;
  wire [15:0] rd__data;
  wire collision;
  always #5 clk = ~clk;
  dut u(.clk(clk), .rst(rst), .wr__en(wr__en), .rd__en(rd__en), .wr__addr(wr__addr),
        .rd__addr(rd__addr), .wr__data(wr__data), .rd__data(rd__data), .collision(collision));
  initial begin
{steps}
    $finish;
  end
endmodule
""")
    lines = icarus_output(tmp_path, tmp_path / "tb.v", tmp_path / "dut.v")
    cell_out = [None if "x" in v.lower() else int(v, 16) for v in lines if len(v) == 4]
    assert len(cell_out) == len(model_out) == n
    defined = [i for i, v in enumerate(out) if v is not None]
    assert len(defined) > n // 4
    for i, want in enumerate(out):
        if want is None:
            assert cell_out[i] is None, i
        else:
            assert cell_out[i] == want == model_out[i], i
