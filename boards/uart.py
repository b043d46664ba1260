"""8N1 UART receiver and transmitter (Amaranth), `divisor` clock cycles per bit."""
from __future__ import annotations

from amaranth import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from sparknet_hw.errors import UserError


def uart_divisor(clk_freq: float, baud: int, tolerance: float = 0.02) -> int:
    """Clock cycles per bit; refuse a baud rate the clock cannot make within `tolerance`."""
    if baud <= 0:
        raise UserError(f"baud rate must be positive, got {baud}")
    divisor = round(clk_freq / baud)
    if divisor < 4:
        raise UserError(f"baud {baud} is too fast for a {clk_freq / 1e6:g} MHz clock "
                        f"(needs at least 4 clock cycles per bit)")
    error = abs(clk_freq / divisor - baud) / baud
    if error > tolerance:
        raise UserError(f"baud {baud} from a {clk_freq / 1e6:g} MHz clock is off by "
                        f"{100 * error:.1f}% (divisor {divisor}); pick a baud rate closer to "
                        f"{clk_freq / 1e6:g} MHz / N")
    return divisor


class UARTRx(wiring.Component):
    """Receiver. `o` is a stream of bytes; the byte stays valid until taken. A byte completed
    while the previous one is still untaken replaces it and pulses `overrun`; a missing stop
    bit drops the byte and pulses `framing_error`."""

    def __init__(self, divisor: int):
        if divisor < 4:
            raise ValueError("UART divisor must be at least 4")
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "o": Out(stream.Signature(8)),
                          "framing_error": Out(1), "overrun": Out(1)})

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, rx, init=1)
        timer = Signal(range(self.divisor))
        bits = Signal(range(8))
        shreg = Signal(8)
        valid = Signal()
        data = Signal(8)
        m.d.comb += [self.o.valid.eq(valid), self.o.payload.eq(data)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += valid.eq(0)
        m.d.sync += [self.framing_error.eq(0), self.overrun.eq(0)]
        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += timer.eq(self.divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer == 0):
                    with m.If(~rx):
                        m.d.sync += [timer.eq(self.divisor - 1), bits.eq(0)]
                        m.next = "DATA"
                    with m.Else():
                        m.next = "IDLE"          # a glitch, not a start bit
            with m.State("DATA"):
                with m.If(timer == 0):
                    m.d.sync += [shreg.eq(Cat(shreg[1:], rx)), timer.eq(self.divisor - 1),
                                 bits.eq(bits + 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer == 0):
                    with m.If(rx):
                        m.d.sync += [data.eq(shreg), valid.eq(1)]
                        with m.If(valid & ~self.o.ready):
                            m.d.sync += self.overrun.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += self.framing_error.eq(1)
                        m.next = "BREAK"
            with m.State("BREAK"):                  # wait for the line to go idle again
                with m.If(rx):
                    m.next = "IDLE"
        return m


class UARTTx(wiring.Component):
    """Transmitter: takes a byte from `i` when idle and shifts out start, 8 data, stop bits."""

    def __init__(self, divisor: int):
        if divisor < 4:
            raise ValueError("UART divisor must be at least 4")
        self.divisor = divisor
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        bits = Signal(range(11))
        shreg = Signal(10, init=1)
        m.d.comb += self.tx.eq(shreg[0])
        with m.If(bits == 0):
            m.d.comb += self.i.ready.eq(1)
            with m.If(self.i.valid):
                m.d.sync += [shreg.eq(Cat(0, self.i.payload, 1)), bits.eq(10),
                             timer.eq(self.divisor - 1)]
        with m.Else():
            with m.If(timer == 0):
                m.d.sync += [shreg.eq(Cat(shreg[1:], 1)), bits.eq(bits - 1),
                             timer.eq(self.divisor - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m
