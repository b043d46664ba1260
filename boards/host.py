"""Host driver: talk to the board over a serial port with the framing protocol.

    link = BoardLink("/dev/ttyUSB1", baud=115200)
    link.info()                      # {"version", "C", "record_words", "fingerprint"}
    rec = link.infer(model, x)       # x: int8 [32, 101] -> decoded result record

The features a request carries are computed on the host by sparknet_hw.clips
(`load_features(path, model)`: load_wav -> MFCC -> quantized with the export's input format,
or a .npy of features).
"""
from __future__ import annotations

import time

from sparknet_hw.errors import UserError
from sparknet_hw.quant.export_types import ExportLike, as_export
from sparknet_hw.rtl.record import record_fields

from . import protocol as P


class LinkError(UserError):
    """No (usable) answer from the board."""


class BoardErrorFrame(UserError):
    """The board answered with an error frame."""

    def __init__(self, code: int):
        self.code = code
        super().__init__(f"the board rejected the frame: {P.error_name(code)} (code {code})")


def open_serial(port: str, baud: int, timeout: float = 0.1):
    try:
        import serial
    except ImportError:
        raise UserError("pyserial is not installed: .venv/bin/pip install pyserial") from None
    try:
        return serial.serial_for_url(port, baudrate=baud, timeout=timeout)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise LinkError(f"cannot open serial port {port}: {exc}; is the board plugged in? "
                        f"(iCEBreaker: the second FTDI channel, usually /dev/ttyUSB1)") from None


class BoardLink:
    """One request, one answer frame. `ser` is anything with write(), read(n),
    reset_input_buffer() (pyserial); give it directly for tests."""

    def __init__(self, port: str | None = None, baud: int = 115200, timeout: float = 5.0,
                 ser=None):
        self.port = port or "<serial>"
        self.baud = baud
        self.timeout = timeout
        self.ser = ser if ser is not None else open_serial(port, baud)
        self.decoder = P.FrameDecoder()

    def close(self) -> None:
        close = getattr(self.ser, "close", None)
        if close:
            close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def transact(self, frame: bytes, timeout: float | None = None) -> P.Frame:
        if hasattr(self.ser, "reset_input_buffer"):
            self.ser.reset_input_buffer()
        self.decoder = P.FrameDecoder()
        self.ser.write(frame)
        if hasattr(self.ser, "flush"):
            self.ser.flush()
        limit = time.monotonic() + (self.timeout if timeout is None else timeout)
        while time.monotonic() < limit:
            data = self.ser.read(max(1, getattr(self.ser, "in_waiting", 0) or 1))
            if not data:
                continue
            try:
                frames = self.decoder.feed(data)
            except P.ProtocolError as exc:
                raise LinkError(f"garbled answer from the board on {self.port}: {exc}; "
                                f"check the baud rate ({self.baud})") from None
            if frames:
                return frames[0]
        got = self.decoder.pending() + self.decoder.skipped
        raise LinkError(f"no answer from the board on {self.port} within "
                        f"{self.timeout if timeout is None else timeout:g} s "
                        f"({got} stray bytes); is the bitstream loaded and the baud rate "
                        f"({self.baud}) the one it was built for?")

    def frame_seconds(self, n_bytes: int) -> float:
        return 10 * n_bytes / self.baud

    def _answer(self, frame: P.Frame, decode):
        try:
            if frame.type == P.T_ERROR:
                raise BoardErrorFrame(P.error_code(frame))
            return decode(frame)
        except P.ProtocolError as exc:
            raise LinkError(f"unexpected answer from {self.port}: {exc} (is this a SparkNet "
                            f"board? a loopback echoes the request)") from None

    def info(self) -> dict:
        return self._answer(self.transact(P.encode_info()), P.decode_info)

    def infer(self, model: ExportLike, features) -> dict:
        model = as_export(model)
        request = P.encode_infer(features, model.features, model.frames)
        n_words = len(record_fields(model))
        budget = self.timeout + self.frame_seconds(len(request) + 4 * n_words + 5)
        return self._answer(self.transact(request, budget),
                            lambda frame: P.decode_result(model, frame))
