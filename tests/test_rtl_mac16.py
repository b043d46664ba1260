"""The DSP accumulators (rtl/mac16.py, PEArray(accumulator="dsp")): the same sums, cycle for
cycle, as the accumulators in logic, and the SB_MAC16 instances an UltraPlus build gets
behave as the model the simulations use."""
import random
import shutil

import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from sparknet_hw.rtl.mac16 import MAC16Accumulator
from sparknet_hw.rtl.pe_array import PEArray

from sparknet_hw.sim.gate_level import UltraPlus, icarus_output

from test_rtl_spram import _instances

SEED = 1302


def _pe_stimulus(rng, n, lanes, wbits, abits, bias_bits):
    """Ops as the sequencer issues them: outputs of 1..9 ops, each starting with a clear,
    gaps (valid low) between and inside them, gated lanes, and signals that are not
    meaningful (clear or enables without valid) set at random."""
    ops = []
    while len(ops) < n:
        for i in range(rng.randint(1, 9)):
            while rng.random() < 0.2:
                ops.append(dict(valid=0, clear=rng.getrandbits(1), en=rng.getrandbits(lanes),
                                w=[0] * lanes, a=[0] * lanes, bias=[0] * lanes))
            ops.append(dict(
                valid=1, clear=int(i == 0), en=rng.getrandbits(lanes),
                w=[rng.randrange(-(1 << wbits - 1), 1 << wbits - 1) for _ in range(lanes)],
                a=[rng.randrange(-(1 << abits - 1), 1 << abits - 1) for _ in range(lanes)],
                bias=[rng.randrange(-(1 << bias_bits - 1), 1 << bias_bits - 1)
                      for _ in range(lanes)]))
    return ops[:n]


def _run_pe(dut, ops):
    sums = []

    async def bench(ctx):
        for op in ops:
            ctx.set(dut.valid, op["valid"])
            ctx.set(dut.clear, op["clear"])
            ctx.set(dut.en, op["en"])
            for p in range(dut.lanes):
                ctx.set(dut.w[p], op["w"][p])
                ctx.set(dut.a[p], op["a"][p])
                ctx.set(dut.bias[p], op["bias"][p])
            await ctx.tick()
            sums.append([ctx.get(dut.acc[p]) for p in range(dut.lanes)])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return sums


@pytest.mark.parametrize("wbits,abits", [(8, 8), (4, 4)])
def test_dsp_accumulators_give_the_sums_of_the_logic_ones(wbits, abits):
    print(f"seed {SEED}")
    rng = random.Random(SEED + wbits)
    lanes, bias_bits, acc_bits = 3, 14, 20
    ops = _pe_stimulus(rng, 600, lanes, wbits, abits, bias_bits)
    fabric = _run_pe(PEArray(lanes, wbits, abits, bias_bits, acc_bits), ops)
    dsp = _run_pe(PEArray(lanes, wbits, abits, bias_bits, acc_bits, accumulator="dsp"), ops)
    assert fabric == dsp
    # the stimulus reaches what matters: outputs of one op, and sums far from the bias
    assert len({s[0] for s in fabric}) > 100


def test_pe_array_rejects_an_unknown_accumulator_or_one_too_wide():
    with pytest.raises(ValueError, match="choose one of fabric, dsp"):
        PEArray(2, 8, 8, 16, 24, accumulator="dsps")
    with pytest.raises(ValueError, match="does not fit the DSP's 32 bits"):
        PEArray(2, 8, 8, 16, 33, accumulator="dsp")


def test_an_ultraplus_platform_gets_two_sb_mac16_per_lane():
    prims = _instances(Fragment.get(PEArray(4, 8, 8, 16, 24, accumulator="dsp"), UltraPlus()))
    assert [p.type for p in prims] == ["SB_MAC16"] * 8
    assert not _instances(Fragment.get(PEArray(4, 8, 8, 16, 24, accumulator="dsp"), None))


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog missing")
def test_the_model_behaves_as_yosys_simulation_model_of_the_cell(tmp_path):
    """The same random operands, holds and loads through the Amaranth model and, in Icarus,
    through the SB_MAC16 instance with Yosys' model of the cell: the same 32-bit output in
    every cycle once the inputs have been loaded (the cell's registers start undefined)."""
    from amaranth.back import verilog

    print(f"seed {SEED}")
    rng = random.Random(SEED)
    n = 500
    stim = [(rng.randrange(-128, 128), rng.randrange(-128, 128), int(rng.random() < 0.3),
             int(rng.random() < 0.1), rng.randrange(-(1 << 31), 1 << 31),
             int(rng.random() < 0.3)) for _ in range(n)]
    stim[0] = stim[0][:2] + (0, 1, stim[0][4], 0)      # load inputs and sum in the first cycle
    model_out = []
    dut = MAC16Accumulator(8, 8)

    async def bench(ctx):
        for a, b, hold_in, load, value, hold_acc in stim:
            for sig, v in ((dut.a, a), (dut.b, b), (dut.hold_inputs, hold_in),
                           (dut.load, load), (dut.load_value, value), (dut.hold_acc, hold_acc)):
                ctx.set(sig, v)
            await ctx.tick()
            model_out.append(ctx.get(dut.out) & 0xFFFFFFFF)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()

    cell = MAC16Accumulator(8, 8)
    (tmp_path / "dut.v").write_text(verilog.convert(cell, name="dut", platform=UltraPlus(),
                                                    emit_src=False))
    steps = "\n".join(
        f"    a = {a & 0xFF}; b = {b & 0xFF}; hold_inputs = {hi}; load = {ld}; "
        f"load_value = {v & 0xFFFFFFFF}; hold_acc = {ha}; @(posedge clk); #1 "
        f"$display(\"%h\", out);"
        for a, b, hi, ld, v, ha in stim)
    (tmp_path / "tb.v").write_text(f"""
module tb;
  reg clk = 0, rst = 0, hold_inputs = 0, load = 0, hold_acc = 0;
  reg [7:0] a = 0, b = 0;
  reg [31:0] load_value = 0;
  wire [31:0] out;
  always #5 clk = ~clk;
  dut u(.clk(clk), .rst(rst), .a(a), .b(b), .hold_inputs(hold_inputs), .load(load),
        .load_value(load_value), .hold_acc(hold_acc), .out(out));
  initial begin
{steps}
    $finish;
  end
endmodule
""")
    lines = icarus_output(tmp_path, tmp_path / "tb.v", tmp_path / "dut.v")
    cell_out = [int(v, 16) for v in lines if len(v) == 8]
    assert len(cell_out) == len(model_out) == n
    assert cell_out == model_out
    assert len(set(model_out)) > n // 4


def _pack(values, bits):
    return sum((v & ((1 << bits) - 1)) << (i * bits) for i, v in enumerate(values))


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog missing")
def test_the_synthesised_dsp_lanes_give_the_sums_of_the_logic_ones(tmp_path):
    """The PE array with its accumulators in the DSPs, through `synth_ice40` as the UltraPlus
    build runs it (without `-dsp`, boards.synth.synth_options), simulated gate by gate in
    Icarus (Yosys' cell models): every cycle's sums equal those of the accumulators in logic.
    Synthesis can rewire the DSPs: with `-dsp`, its ice40_dsp pass turns each into a bare
    multiplier."""
    from sparknet_hw.rtl import HwConfig
    from sparknet_hw.sim.gate_level import ultraplus_netlist

    print(f"seed {SEED}")
    lanes, wbits, abits, bias_bits, acc_bits = 2, 8, 9, 13, 22
    ops = _pe_stimulus(random.Random(SEED + 1), 300, lanes, wbits, abits, bias_bits)
    want = _run_pe(PEArray(lanes, wbits, abits, bias_bits, acc_bits), ops)

    dut = PEArray(lanes, wbits, abits, bias_bits, acc_bits, accumulator="dsp")
    netlist = ultraplus_netlist(dut, "pe", HwConfig(accumulators="dsp"))
    assert netlist.count("SB_MAC16 ") == 2 * lanes      # the instances, not rewired away
    (tmp_path / "net.v").write_text(netlist)
    steps = "\n".join(
        f"    valid = {op['valid']}; clear = {op['clear']}; en = {op['en']}; "
        f"w = {_pack(op['w'], wbits)}; a = {_pack(op['a'], abits)}; "
        f"bias = {_pack(op['bias'], bias_bits)}; @(posedge clk); #1 $display(\"%h\", acc);"
        for op in ops)
    (tmp_path / "tb.v").write_text(f"""
module tb;
  reg clk = 0, rst = 0, valid = 0, clear = 0;
  reg [{lanes - 1}:0] en = 0;
  reg [{lanes * wbits - 1}:0] w = 0;
  reg [{lanes * abits - 1}:0] a = 0;
  reg [{lanes * bias_bits - 1}:0] bias = 0;
  wire [{lanes * acc_bits - 1}:0] acc;
  always #5 clk = ~clk;
  pe u(.clk(clk), .rst(rst), .valid(valid), .clear(clear), .en(en), .w(w), .a(a),
       .bias(bias), .acc(acc));
  initial begin
{steps}
    $finish;
  end
endmodule
""")
    lines = icarus_output(tmp_path, tmp_path / "tb.v", tmp_path / "net.v")
    words = [v for v in lines if len(v) == -(-lanes * acc_bits // 4)]
    assert len(words) == len(ops)
    mask = (1 << acc_bits) - 1
    # the first cycles, before any output is cleared, hold the cells' undefined power-up
    first = next(i for i, op in enumerate(ops) if op["valid"] and op["clear"])
    for i in range(first + 1, len(ops)):
        assert "x" not in words[i].lower(), i
        assert int(words[i], 16) == _pack([s & mask for s in want[i]], acc_bits), i
