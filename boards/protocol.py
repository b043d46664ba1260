"""The UART framing protocol between host and board (docs/protocol.md).

Pure Python, no hardware imports: the host driver (boards/host.py), the cocotb board test and
the RTL framer/deframer (boards/framer.py, which takes its constants from here) share it.

Frame, both directions:  SYNC | TYPE | LEN_LO | LEN_HI | PAYLOAD (LEN bytes) | CRC
CRC is CRC-8 (polynomial x^8 + x^2 + x + 1 = 0x07, init 0x00, no reflection, no final XOR)
over TYPE, LEN_LO, LEN_HI and PAYLOAD (not over SYNC).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

SYNC = 0xA5
PROTOCOL_VERSION = 2

# host -> board
T_INFER = 0x01          # payload: 32 x 101 int8 features, frame-major (t outer, f inner)
T_INFO = 0x02           # payload: empty
# board -> host
T_RESULT = 0x81         # payload: the result record (rtl/record.py), 32-bit words, little-endian
T_INFO_REPLY = 0x82     # payload: INFO_LEN bytes, see info_payload()
T_ERROR = 0xEE          # payload: 1 byte error code

HEADER_LEN = 4          # SYNC, TYPE, LEN_LO, LEN_HI
INFO_LEN = 8
MAX_LEN = 0xFFFF

E_CHECKSUM = 1          # CRC byte does not match
E_LENGTH = 2            # LEN does not fit TYPE
E_TYPE = 3              # unknown TYPE
E_TIMEOUT = 4           # gap between two bytes of a frame longer than the timeout
E_BUSY = 5              # INFER while the previous inference's answer is not sent yet
E_FRAMING = 6           # UART stop bit missing inside a frame (wrong baud rate, noise)
E_OVERRUN = 7           # a byte arrived before the accelerator took the previous one

ERROR_NAMES = {E_CHECKSUM: "bad checksum", E_LENGTH: "wrong length for frame type",
               E_TYPE: "unknown frame type", E_TIMEOUT: "timeout between bytes",
               E_BUSY: "busy (previous answer not sent yet)", E_FRAMING: "UART framing error",
               E_OVERRUN: "receive overrun"}


class ProtocolError(Exception):
    """A frame from the board that cannot be decoded (bad sync, checksum, length)."""


def crc8_update(crc: int, byte: int) -> int:
    crc ^= byte & 0xFF
    for _ in range(8):
        crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def crc8(data: bytes, crc: int = 0) -> int:
    for byte in data:
        crc = crc8_update(crc, byte)
    return crc


def encode_frame(ftype: int, payload: bytes = b"") -> bytes:
    payload = bytes(payload)
    if len(payload) > MAX_LEN:
        raise ValueError(f"payload of {len(payload)} bytes does not fit a frame")
    body = bytes([ftype & 0xFF, len(payload) & 0xFF, len(payload) >> 8]) + payload
    return bytes([SYNC]) + body + bytes([crc8(body)])


def features_payload(features, n_features: int = 32, n_frames: int = 101) -> bytes:
    """int8 features [F, T] -> payload bytes in the order the accelerator takes them:
    frame by frame (t = 0..T-1), within a frame f = 0..F-1."""
    import numpy as np

    x = np.asarray(features)
    if x.shape != (n_features, n_frames):
        raise ValueError(f"features have shape {x.shape}, expected ({n_features}, {n_frames})")
    if not np.issubdtype(x.dtype, np.integer) or x.min() < -128 or x.max() > 127:
        raise ValueError("features must be integers in [-128, 127] (quantize them first)")
    return x.T.astype(np.int8).tobytes()


def encode_infer(features, n_features: int = 32, n_frames: int = 101) -> bytes:
    return encode_frame(T_INFER, features_payload(features, n_features, n_frames))


def encode_info() -> bytes:
    return encode_frame(T_INFO)


def infer_length(n_features: int = 32, n_frames: int = 101) -> int:
    return n_features * n_frames


@dataclass
class Frame:
    type: int
    payload: bytes


class FrameDecoder:
    """Incremental decoder of board -> host frames: feed() bytes, get complete frames.

    Bytes before a SYNC are skipped (counted in `skipped`); a frame whose CRC does not match
    raises ProtocolError (the decoder then resynchronizes on the next SYNC).
    """

    def __init__(self, max_len: int = MAX_LEN):
        self.buf = bytearray()
        self.skipped = 0
        self.max_len = max_len

    def feed(self, data: bytes) -> list[Frame]:
        self.buf += data
        frames = []
        while True:
            start = self.buf.find(bytes([SYNC]))
            if start < 0:
                self.skipped += len(self.buf)
                self.buf.clear()
                break
            if start:
                self.skipped += start
                del self.buf[:start]
            if len(self.buf) < HEADER_LEN:
                break
            length = self.buf[2] | (self.buf[3] << 8)
            if length > self.max_len:
                del self.buf[:1]
                raise ProtocolError(f"frame length {length} exceeds {self.max_len}")
            total = HEADER_LEN + length + 1
            if len(self.buf) < total:
                break
            frame = bytes(self.buf[:total])
            del self.buf[:total]
            if crc8(frame[1:-1]) != frame[-1]:
                raise ProtocolError(f"answer frame type 0x{frame[1]:02x} has a bad checksum "
                                    f"(0x{frame[-1]:02x}, computed 0x{crc8(frame[1:-1]):02x})")
            frames.append(Frame(frame[1], frame[HEADER_LEN:-1]))
        return frames

    def pending(self) -> int:
        return len(self.buf)


def decode_frame(data: bytes) -> Frame:
    """Exactly one frame from `data` (leading garbage is skipped)."""
    dec = FrameDecoder()
    frames = dec.feed(data)
    if not frames:
        raise ProtocolError(f"no complete frame in {len(data)} bytes")
    return frames[0]


def words_le(payload: bytes) -> list[int]:
    if len(payload) % 4:
        raise ProtocolError(f"result payload of {len(payload)} bytes is not whole 32-bit words")
    return [int.from_bytes(payload[i:i + 4], "little") for i in range(0, len(payload), 4)]


def decode_result(model, frame: Frame) -> dict:
    """The decoded result record of a frame (model: an export dict or a typed Export)."""
    from sparknet_hw.rtl.record import decode_record

    if frame.type != T_RESULT:
        raise ProtocolError(f"expected a result frame, got type 0x{frame.type:02x}")
    try:
        return decode_record(model, words_le(frame.payload))
    except ValueError as exc:
        raise ProtocolError(str(exc)) from None


def error_code(frame: Frame) -> int:
    if frame.type != T_ERROR or len(frame.payload) != 1:
        raise ProtocolError(f"expected an error frame, got type 0x{frame.type:02x} "
                            f"with {len(frame.payload)} bytes")
    return frame.payload[0]


def error_name(code: int) -> str:
    return ERROR_NAMES.get(code, f"error code {code}")


def export_fingerprint(model) -> int:
    """32-bit fingerprint of an export's integer contents (an export dict or a typed Export,
    the same number for both), built into the bitstream so the host can tell whether its
    export file matches the board."""
    import json

    from sparknet_hw.quant.export_types import Export

    if isinstance(model, Export):
        model = model.to_dict()
    keep = {k: model[k] for k in ("C", "features", "frames", "input", "blocks", "head",
                                  "classifier") if k in model}
    return zlib.crc32(json.dumps(keep, sort_keys=True, separators=(",", ":")).encode())


def info_payload(C: int, n_words: int, fingerprint: int) -> bytes:
    """INFO reply: version, C, record words (LE16), export fingerprint (LE32)."""
    return (bytes([PROTOCOL_VERSION, C & 0xFF, n_words & 0xFF, (n_words >> 8) & 0xFF])
            + (fingerprint & 0xFFFFFFFF).to_bytes(4, "little"))


def decode_info(frame: Frame) -> dict:
    if frame.type != T_INFO_REPLY or len(frame.payload) != INFO_LEN:
        raise ProtocolError(f"expected an info frame, got type 0x{frame.type:02x} "
                            f"with {len(frame.payload)} bytes")
    p = frame.payload
    return {"version": p[0], "C": p[1], "record_words": p[2] | (p[3] << 8),
            "fingerprint": int.from_bytes(p[4:8], "little")}
