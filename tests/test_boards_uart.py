"""UART receiver/transmitter unit simulations (amaranth.sim)."""
import pytest
from amaranth import Module
from amaranth.sim import Simulator

from sparknet_hw.boards.uart import UARTRx, UARTTx, uart_divisor
from sparknet_hw.errors import UserError

DIV = 6


async def send_byte(ctx, line, value, divisor=DIV, stop=1):
    bits = [0] + [(value >> i) & 1 for i in range(8)] + [stop]
    for bit in bits:
        ctx.set(line, bit)
        await ctx.tick().repeat(divisor)
    ctx.set(line, 1)


def test_divisor_and_tolerance():
    assert uart_divisor(12e6, 115200) == 104
    assert uart_divisor(25e6, 115200) == 217
    with pytest.raises(UserError, match="too fast"):
        uart_divisor(12e6, 6_000_000)
    with pytest.raises(UserError, match="off by"):
        uart_divisor(12e6, 2_300_000)  # 12e6/5 = 2.4 Mbaud: 4.3 % off


def test_rx_bytes_framing_error_and_overrun():
    dut = UARTRx(DIV)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    got, errors, overruns = [], [], []

    async def tb(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(5)
        for value in (0x00, 0xFF, 0xA5, 0x5A, 0x81):
            await send_byte(ctx, dut.rx, value)
            await ctx.tick().repeat(2)
        await send_byte(ctx, dut.rx, 0x33, stop=0)     # missing stop bit
        await ctx.tick().repeat(3 * DIV)
        await send_byte(ctx, dut.rx, 0x44)
        await ctx.tick().repeat(DIV)

    async def sink(ctx):
        ctx.set(dut.o.ready, 1)
        async for clk, rst, fe, ov, valid, payload in ctx.tick().sample(
                dut.framing_error, dut.overrun, dut.o.valid, dut.o.payload):
            if valid:
                got.append(payload)
            if fe:
                errors.append(1)
            if ov:
                overruns.append(1)

    sim.add_testbench(tb)
    sim.add_process(sink)
    sim.run_until(2e-3)
    assert got == [0x00, 0xFF, 0xA5, 0x5A, 0x81, 0x44]
    assert errors == [1] and not overruns

    # nobody takes the bytes: the second one overruns the first
    dut = UARTRx(DIV)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    state = {}

    async def tb2(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(3)
        await send_byte(ctx, dut.rx, 0x11)
        await send_byte(ctx, dut.rx, 0x22)
        state["over"] = 0
        await ctx.tick().repeat(2 * DIV)
        state["payload"] = ctx.get(dut.o.payload)

    async def watch(ctx):
        n = 0
        async for clk, rst, ov in ctx.tick().sample(dut.overrun):
            n += ov
            state["overruns"] = n

    sim.add_testbench(tb2)
    sim.add_process(watch)
    sim.run_until(1e-3)
    assert state["overruns"] == 1 and state["payload"] == 0x22


def test_tx_waveform_and_loopback():
    m = Module()
    m.submodules.tx = tx = UARTTx(DIV)
    m.submodules.rx = rx = UARTRx(DIV)
    m.d.comb += rx.rx.eq(tx.tx)
    sim = Simulator(m)
    sim.add_clock(1e-6)
    values = [0x00, 0x01, 0x80, 0xFF, 0x5A, 0xC3]
    got, line = [], []

    async def source(ctx):
        for v in values:
            ctx.set(tx.i.payload, v)
            ctx.set(tx.i.valid, 1)
            await ctx.tick().until(tx.i.ready)
        ctx.set(tx.i.valid, 0)

    async def sink(ctx):
        ctx.set(rx.o.ready, 1)
        async for clk, rst, valid, payload, level in ctx.tick().sample(rx.o.valid, rx.o.payload,
                                                                 tx.tx):
            line.append(level)
            if valid:
                got.append(payload)

    sim.add_testbench(source)
    sim.add_process(sink)
    sim.run_until(1e-3)
    assert got == values
    # first byte on the wire: idle high, start bit low for DIV cycles, LSB first, stop high
    start = line.index(0)
    bits = [line[start + DIV // 2 + DIV * i] for i in range(10)]
    assert bits == [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    assert line[-1] == 1
