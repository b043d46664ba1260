"""The accelerator behind a UART: receiver -> deframer -> accelerator -> framer -> transmitter.

`UARTAccelerator` is platform-independent (ports rx, tx, leds), so the same design is
synthesized for a board (`BoardTop`, boards/platforms.py) and simulated by cocotb as Verilog
(`board_verilog`).
"""
from __future__ import annotations

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from sparknet_hw.rtl.record import record_fields
from sparknet_hw.quant.export_types import ExportLike, as_export

from . import protocol as P
from .framer import Deframer, Framer
from .uart import UARTRx, UARTTx

# leds bits of UARTAccelerator
LED_CLASS = slice(0, 4)     # last detected class, binary
LED_VALID = 4               # a result has been sent since power-up
LED_ERROR = 5               # the last answer was an error frame
LED_BUSY = 6                # an inference is running / its answer is going out


def result_adapter(m: Module, result, framer_result) -> None:
    """Connect the accelerator's result stream to the framer's {data, last} stream, whatever
    the accelerator calls its word and last flag."""
    payload = result.payload
    members = getattr(payload.shape(), "members", None) if hasattr(payload, "shape") else None
    if members is not None and "data" in members and "last" in members:
        data, last = payload.data, payload.last
    elif members is not None and "word" in members and "last" in members:
        data, last = payload.word, payload.last
    elif hasattr(result, "last"):
        data, last = payload, result.last
    else:
        raise TypeError("the accelerator's result stream has no recognizable 'last' flag")
    m.d.comb += [framer_result.valid.eq(result.valid), framer_result.payload.data.eq(data),
                 framer_result.payload.last.eq(last), result.ready.eq(framer_result.ready)]


class UARTAccelerator(wiring.Component):
    """Parameters: the accelerator component (ports `features`, `result`), the export model
    (record length, INFO reply), UART `divisor` (clock cycles per bit) and `timeout` (clock
    cycles allowed between two bytes of a frame)."""

    def __init__(self, accelerator, model: ExportLike, divisor: int, timeout: int):
        self.accelerator = accelerator
        self.model = model = as_export(model)
        self.divisor = divisor
        self.timeout = timeout
        self.n_words = len(record_fields(model))
        self.info = P.info_payload(model.C, self.n_words, P.export_fingerprint(model))
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "leds": Out(8)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.rx = rx = UARTRx(self.divisor)
        m.submodules.tx = tx = UARTTx(self.divisor)
        m.submodules.deframer = deframer = Deframer(
            self.model.features * self.model.frames, self.timeout)
        m.submodules.framer = framer = Framer(
            self.n_words, self.info, record_fields(self.model).index("class"))
        m.submodules.accel = accel = self.accelerator

        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx),
                     deframer.framing_error.eq(rx.framing_error),
                     deframer.overrun.eq(rx.overrun),
                     deframer.result_done.eq(framer.result_done)]
        wiring.connect(m, rx.o, deframer.i)
        wiring.connect(m, deframer.features, accel.features)
        wiring.connect(m, deframer.request, framer.request)
        result_adapter(m, accel.result, framer.result)
        wiring.connect(m, framer.o, tx.i)
        m.d.comb += [self.leds[LED_CLASS].eq(framer.last_class[:4]),
                     self.leds[LED_VALID].eq(framer.class_valid),
                     self.leds[LED_ERROR].eq(framer.last_error),
                     self.leds[LED_BUSY].eq(deframer.inflight)]
        return m


def board_verilog(core: UARTAccelerator, name: str = "sparknet_board") -> str:
    """Verilog of the whole UART design (ports clk, rst, rx, tx, leds) for simulation."""
    from amaranth.back import verilog

    return verilog.convert(core, name=name, emit_src=False)
