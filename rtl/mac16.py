"""A multiply-accumulate in one iCE40 UltraPlus DSP (SB_MAC16), its accumulator included.

The SB_MAC16 is used as a signed 16 x 16 multiplier with registered inputs and a 32-bit
accumulator behind it (the top and bottom 16-bit adders chained):

    inputs:       rA <= a unless hold_inputs;  rB <= b likewise
    accumulator:  acc <= load ? load_value : acc + rA * rB,  unless hold_acc
    out:          acc (registered)

`hold_inputs` keeps the multiplier's inputs, and so its product, still when a MAC is gated.
`load` replaces the sum (it does not add to it), which is why `rtl/pe_array.py` gives each lane
two of these and loads the bias into the idle one.

A design with these is synthesised without `synth_ice40 -dsp` (boards.synth.synth_options):
that option's ice40_dsp pass takes every SB_MAC16 for a bare multiplier of its own making and
rewires it as one (clock, enables and accumulator tied off).

On an UltraPlus platform this is an SB_MAC16 instance; everywhere else (the Amaranth
simulator, the Verilog the cocotb runs simulate, the resource estimate) it is the same
behaviour in logic, as Yosys' simulation model of the cell (share/ice40/cells_sim.v) has it for
these parameters. `tests/test_rtl_mac16.py` runs both on the same stimulus.
"""
from __future__ import annotations

from amaranth.hdl import ClockSignal, Instance, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .spram import is_ultraplus

MAC16_MARK = "sparknet_mac16"   # attribute on the model's registers (the resource estimate)
ACC_WIDTH = 32

# the cell's parameters for the function above (names and encodings as in cells_sim.v)
MAC16_PARAMS = dict(
    NEG_TRIGGER=0, A_REG=1, B_REG=1, C_REG=0, D_REG=0,
    TOP_8x8_MULT_REG=0, BOT_8x8_MULT_REG=0,
    PIPELINE_16x16_MULT_REG1=0, PIPELINE_16x16_MULT_REG2=0,
    TOPOUTPUT_SELECT=1, BOTOUTPUT_SELECT=1,            # the accumulator registers
    TOPADDSUB_LOWERINPUT=2, BOTADDSUB_LOWERINPUT=2,    # the 16 x 16 product's halves
    TOPADDSUB_UPPERINPUT=0, BOTADDSUB_UPPERINPUT=0,    # ... plus the accumulator
    TOPADDSUB_CARRYSELECT=2, BOTADDSUB_CARRYSELECT=0,  # one 32-bit adder
    MODE_8x8=0, A_SIGNED=1, B_SIGNED=1,
)


class MAC16Accumulator(wiring.Component):
    def __init__(self, a_bits: int, b_bits: int):
        if not (1 <= a_bits <= 16 and 1 <= b_bits <= 16):
            raise ValueError(f"SB_MAC16 multiplies 16-bit operands, not {a_bits} x {b_bits}")
        super().__init__({
            "a": In(signed(a_bits)),
            "b": In(signed(b_bits)),
            "hold_inputs": In(1),
            "load": In(1),
            "load_value": In(signed(ACC_WIDTH)),
            "hold_acc": In(1),
            "out": Out(signed(ACC_WIDTH)),
        })

    def elaborate(self, platform):
        m = Module()
        if is_ultraplus(platform):
            a16, b16, value = Signal(signed(16)), Signal(signed(16)), Signal(ACC_WIDTH)
            out = Signal(ACC_WIDTH)
            m.d.comb += [a16.eq(self.a), b16.eq(self.b), value.eq(self.load_value),
                         self.out.eq(out)]
            m.submodules.dsp = Instance(
                "SB_MAC16",
                **{f"p_{k}": v for k, v in MAC16_PARAMS.items()},
                i_CLK=ClockSignal(), i_CE=1,
                i_A=a16, i_B=b16, i_C=value[16:], i_D=value[:16],
                i_AHOLD=self.hold_inputs, i_BHOLD=self.hold_inputs, i_CHOLD=0, i_DHOLD=0,
                i_IRSTTOP=0, i_IRSTBOT=0, i_ORSTTOP=0, i_ORSTBOT=0,
                i_OLOADTOP=self.load, i_OLOADBOT=self.load,
                i_ADDSUBTOP=0, i_ADDSUBBOT=0,
                i_OHOLDTOP=self.hold_acc, i_OHOLDBOT=self.hold_acc,
                i_CI=0, i_ACCUMCI=0, i_SIGNEXTIN=0,
                o_O=out)
            return m
        # the cell's registers, marked for the logic estimate (boards.resources.flip_flop_weight)
        ra = Signal.like(self.a, reset_less=True, attrs={MAC16_MARK: "1"})
        rb = Signal.like(self.b, reset_less=True, attrs={MAC16_MARK: "1"})
        acc = Signal(signed(ACC_WIDTH), attrs={MAC16_MARK: "1"})
        with m.If(~self.hold_inputs):
            m.d.sync += [ra.eq(self.a), rb.eq(self.b)]
        with m.If(~self.hold_acc):
            with m.If(self.load):
                m.d.sync += acc.eq(self.load_value)
            with m.Else():
                m.d.sync += acc.eq(acc + ra * rb)
        m.d.comb += self.out.eq(acc)
        return m
