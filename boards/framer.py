"""Frame receiver (deframer) and answer sender (framer) between the UART and the accelerator.

Protocol constants and the frame format come from boards/protocol.py (docs/protocol.md).

Deframer: bytes from the UART receiver -> validated header -> INFER payload bytes straight into
the accelerator's `features` stream (no clip buffer) -> checksum. It never hangs: once an
INFER payload has started, the accelerator always gets its full clip (zeros fill in after a
timeout or receive error) and the answer unit then drops ("drains") that result and sends an
error frame instead. Every outcome is a request to the framer.

Framer: one request at a time -> [SYNC, TYPE, LEN, PAYLOAD, CRC] bytes to the UART transmitter;
RESULT payloads are the accelerator's result words, little-endian, until the word with `last`.
"""
from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from . import protocol as P


def crc8_next(crc, byte):
    """Amaranth expression: CRC-8 (poly 0x07) of `crc` after one more `byte`, bit-parallel.

    The CRC is linear over GF(2): each output bit is the XOR of some bits of crc ^ byte,
    found by running the bitwise Python CRC on one-hot inputs."""
    c = crc ^ byte
    columns = [P.crc8_update(0, 1 << j) for j in range(8)]
    bits = []
    for i in range(8):
        taps = [c[j] for j in range(8) if (columns[j] >> i) & 1]
        bit = taps[0]
        for tap in taps[1:]:
            bit = bit ^ tap
        bits.append(bit)
    return Cat(*bits)


class Kind(enum.Enum, shape=2):
    RESULT = 0
    ERROR = 1
    INFO = 2


Request = data.StructLayout({"kind": Kind, "code": 8, "drain": 1})


def result_layout(width: int = 32):
    """The stand-in layout of the accelerator's result stream payload (word + last flag)."""
    return data.StructLayout({"data": unsigned(width), "last": 1})


class Deframer(wiring.Component):
    """Parameters: `n_features` payload bytes of an INFER frame, `timeout` clock cycles
    allowed between two bytes of a frame (and of line silence that ends a discard)."""

    def __init__(self, n_features: int = 32 * 101, timeout: int = 1_000_000):
        self.n_features = n_features
        self.timeout = timeout
        super().__init__({
            "i": In(stream.Signature(8)),
            "framing_error": In(1),
            "overrun": In(1),
            "features": Out(stream.Signature(signed(8))),
            "request": Out(stream.Signature(Request)),
            "result_done": In(1),       # the framer took the last result word (sent or drained)
            "inflight": Out(1),         # an inference is running or its answer is not out yet
        })

    def elaborate(self, platform):
        m = Module()
        ftype = Signal(8)
        length = Signal(16)
        count = Signal(range(self.n_features + 1))
        crc = Signal(8)
        timer = Signal(range(self.timeout + 1))
        code = Signal(8)
        drain = Signal()
        kind = Signal(Kind)
        then_discard = Signal()
        is_infer = Signal()

        byte = self.i.payload
        got = Signal()                  # a byte is taken this cycle
        m.d.comb += got.eq(self.i.valid & self.i.ready)
        rx_bad = self.framing_error | self.overrun
        rx_code = Mux(self.framing_error, P.E_FRAMING, P.E_OVERRUN)
        timed_out = timer == self.timeout

        inflight = Signal()
        m.d.comb += self.inflight.eq(inflight)
        with m.If(self.result_done):
            m.d.sync += inflight.eq(0)

        with m.If(got):
            m.d.sync += timer.eq(0)
        with m.Elif(~timed_out):
            m.d.sync += timer.eq(timer + 1)

        def fail(err, forwarded, discard):
            """Leave the frame: request an error answer (after finishing the clip if any
            payload may have gone to the accelerator)."""
            m.d.sync += [code.eq(err), kind.eq(Kind.ERROR), then_discard.eq(discard)]
            if forwarded:
                m.d.sync += drain.eq(1)
                m.next = "FLUSH"
            else:
                m.d.sync += drain.eq(0)
                m.next = "REQUEST"

        with m.FSM():
            with m.State("HUNT"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(got & (byte == P.SYNC)):
                    m.d.sync += crc.eq(0)
                    m.next = "TYPE"
            with m.State("TYPE"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(got):
                    m.d.sync += [ftype.eq(byte), crc.eq(crc8_next(crc, byte))]
                    m.next = "LEN0"
                with m.Elif(rx_bad):
                    fail(rx_code, False, True)
                with m.Elif(timed_out):
                    fail(P.E_TIMEOUT, False, False)
            with m.State("LEN0"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(got):
                    m.d.sync += [length[:8].eq(byte), crc.eq(crc8_next(crc, byte))]
                    m.next = "LEN1"
                with m.Elif(rx_bad):
                    fail(rx_code, False, True)
                with m.Elif(timed_out):
                    fail(P.E_TIMEOUT, False, False)
            with m.State("LEN1"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(got):
                    m.d.sync += [length[8:].eq(byte), crc.eq(crc8_next(crc, byte))]
                    m.next = "HEADER"
                with m.Elif(rx_bad):
                    fail(rx_code, False, True)
                with m.Elif(timed_out):
                    fail(P.E_TIMEOUT, False, False)
            with m.State("HEADER"):             # one cycle to judge the header
                m.d.sync += count.eq(0)
                with m.If(ftype == P.T_INFER):
                    m.d.sync += is_infer.eq(1)
                    with m.If(length != self.n_features):
                        fail(P.E_LENGTH, False, True)
                    with m.Elif(inflight):
                        fail(P.E_BUSY, False, True)
                    with m.Else():
                        m.d.sync += inflight.eq(1)
                        m.next = "PAYLOAD"
                with m.Elif(ftype == P.T_INFO):
                    m.d.sync += is_infer.eq(0)
                    with m.If(length != 0):
                        fail(P.E_LENGTH, False, True)
                    with m.Else():
                        m.next = "CHECK"
                with m.Else():
                    fail(P.E_TYPE, False, True)
            with m.State("PAYLOAD"):           # bytes go straight to the accelerator
                m.d.comb += [self.features.valid.eq(self.i.valid),
                             self.features.payload.eq(byte),
                             self.i.ready.eq(self.features.ready)]
                with m.If(got):
                    m.d.sync += [crc.eq(crc8_next(crc, byte)), count.eq(count + 1)]
                    with m.If(count == self.n_features - 1):
                        m.next = "CHECK"
                with m.Elif(rx_bad):
                    fail(rx_code, True, True)
                with m.Elif(timed_out & ~self.i.valid):
                    fail(P.E_TIMEOUT, True, False)
            with m.State("CHECK"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(got):
                    with m.If(byte == crc):
                        m.d.sync += [kind.eq(Mux(is_infer, Kind.RESULT, Kind.INFO)), code.eq(0),
                                     drain.eq(0), then_discard.eq(0)]
                        m.next = "REQUEST"
                    with m.Else():
                        m.d.sync += [kind.eq(Kind.ERROR), code.eq(P.E_CHECKSUM),
                                     drain.eq(is_infer), then_discard.eq(0)]
                        m.next = "REQUEST"
                with m.Elif(rx_bad):
                    m.d.sync += [kind.eq(Kind.ERROR), code.eq(rx_code), drain.eq(is_infer),
                                 then_discard.eq(1)]
                    m.next = "REQUEST"
                with m.Elif(timed_out):
                    m.d.sync += [kind.eq(Kind.ERROR), code.eq(P.E_TIMEOUT), drain.eq(is_infer),
                                 then_discard.eq(0)]
                    m.next = "REQUEST"
            with m.State("FLUSH"):             # finish the clip with zeros, ignore the line
                m.d.comb += [self.features.valid.eq(1), self.features.payload.eq(0),
                             self.i.ready.eq(1)]
                with m.If(self.features.ready):
                    m.d.sync += count.eq(count + 1)
                    with m.If(count == self.n_features - 1):
                        m.next = "REQUEST"
            with m.State("REQUEST"):
                m.d.comb += [self.request.valid.eq(1), self.i.ready.eq(1),
                             self.request.payload.kind.eq(kind),
                             self.request.payload.code.eq(code),
                             self.request.payload.drain.eq(drain)]
                with m.If(self.request.ready):
                    m.d.sync += timer.eq(0)
                    with m.If(then_discard):
                        m.next = "DISCARD"
                    with m.Else():
                        m.next = "HUNT"
            with m.State("DISCARD"):           # drop bytes until the line is quiet
                m.d.comb += self.i.ready.eq(1)
                with m.If(timed_out):
                    m.next = "HUNT"
        return m


class Framer(wiring.Component):
    """Sends one answer frame per request. `n_words`: result record length (words);
    `info`: the INFO reply payload bytes. `class_index`: word of the record holding the class.
    Outputs for LEDs: `last_class`, `class_valid` (a result was sent), `last_error`."""

    def __init__(self, n_words: int, info: bytes = bytes(P.INFO_LEN), class_index: int = 12,
                 result_shape=None):
        self.n_words = n_words
        self.info = bytes(info)
        assert len(self.info) == P.INFO_LEN
        self.class_index = class_index
        super().__init__({
            "request": In(stream.Signature(Request)),
            "result": In(stream.Signature(result_shape or result_layout())),
            "o": Out(stream.Signature(8)),
            "result_done": Out(1),
            "last_class": Out(8),
            "class_valid": Out(1),
            "last_error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        req = Signal(Request)
        crc = Signal(8)
        idx = Signal(range(max(P.HEADER_LEN, P.INFO_LEN, 4) + 1))
        word = Signal(32)
        word_last = Signal()
        word_no = Signal(range(self.n_words + 2))

        info_rom = Array(Const(b, 8) for b in self.info)

        ftype = Mux(req.kind == Kind.RESULT, P.T_RESULT,
                    Mux(req.kind == Kind.INFO, P.T_INFO_REPLY, P.T_ERROR))
        length = Signal(16)
        m.d.comb += length.eq(Mux(req.kind == Kind.RESULT, self.n_words * 4,
                                  Mux(req.kind == Kind.INFO, P.INFO_LEN, 1)))

        res_data = self.result.payload.data
        res_last = self.result.payload.last
        sent = self.o.valid & self.o.ready

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.request.ready.eq(1)
                with m.If(self.request.valid):
                    m.d.sync += [req.eq(self.request.payload), idx.eq(0), crc.eq(0),
                                 word_no.eq(0)]
                    with m.If((self.request.payload.kind == Kind.ERROR)
                              & self.request.payload.drain):
                        m.next = "DRAIN"
                    with m.Else():
                        m.next = "HEADER"
            with m.State("DRAIN"):             # drop the result of a rejected clip
                m.d.comb += self.result.ready.eq(1)
                with m.If(self.result.valid & res_last):
                    m.d.comb += self.result_done.eq(1)
                    m.next = "HEADER"
            with m.State("HEADER"):
                m.d.comb += [self.o.valid.eq(1),
                             self.o.payload.eq(Mux(idx == 0, P.SYNC,
                                               Mux(idx == 1, ftype,
                                               Mux(idx == 2, length[:8], length[8:]))))]
                with m.If(sent):
                    m.d.sync += idx.eq(idx + 1)
                    with m.If(idx != 0):
                        m.d.sync += crc.eq(crc8_next(crc, self.o.payload))
                    with m.If(idx == P.HEADER_LEN - 1):
                        m.d.sync += idx.eq(0)
                        with m.Switch(req.kind):
                            with m.Case(Kind.RESULT):
                                m.next = "WORD"
                            with m.Case(Kind.INFO):
                                m.next = "INFO"
                            with m.Default():
                                m.next = "CODE"
            with m.State("WORD"):
                m.d.comb += self.result.ready.eq(1)
                with m.If(self.result.valid):
                    m.d.sync += [word.eq(res_data), word_last.eq(res_last), idx.eq(0),
                                 word_no.eq(word_no + 1)]
                    with m.If(word_no == self.class_index):
                        m.d.sync += self.last_class.eq(res_data[:8])
                    m.next = "BYTES"
            with m.State("BYTES"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(word[:8])]
                with m.If(sent):
                    m.d.sync += [word.eq(word >> 8), idx.eq(idx + 1),
                                 crc.eq(crc8_next(crc, self.o.payload))]
                    with m.If(idx == 3):
                        with m.If(word_last):
                            m.d.comb += self.result_done.eq(1)
                            m.d.sync += [self.class_valid.eq(1), self.last_error.eq(0)]
                            m.next = "CRC"
                        with m.Else():
                            m.next = "WORD"
            with m.State("CODE"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(req.code)]
                with m.If(sent):
                    m.d.sync += [crc.eq(crc8_next(crc, self.o.payload)), self.last_error.eq(1)]
                    m.next = "CRC"
            with m.State("INFO"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(info_rom[idx[:3]])]
                with m.If(sent):
                    m.d.sync += [crc.eq(crc8_next(crc, self.o.payload)), idx.eq(idx + 1)]
                    with m.If(idx == P.INFO_LEN - 1):
                        m.next = "CRC"
            with m.State("CRC"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(crc)]
                with m.If(sent):
                    m.next = "IDLE"
        return m
