"""Host driver and `run` command: error paths against a scripted serial port.

The success path (INFO, a clip, an error frame, `run` on a feature file) is tested against
the bytes of the simulated board design itself: tests/test_boards_cocotb.py. The scripted
port here makes the answers the real board cannot be made to give on demand: a corrupted
checksum, silence, a bitstream from another export."""
import json

import numpy as np
import pytest

from sparknet_hw import cli
from sparknet_hw.boards import host
from sparknet_hw.boards import protocol as P
from sparknet_hw.quant import golden
from sparknet_hw.quant.random_export import random_export
from sparknet_hw.rtl.record import record_fields


class ScriptedBoard:
    """A pyserial-like object that answers in the board's format (logits from the golden
    model, counters 0 but `cycles`), with faults on request."""

    def __init__(self, model, fingerprint=None, corrupt_answer=False):
        self.model = model
        self.fingerprint = P.export_fingerprint(model) if fingerprint is None else fingerprint
        self.corrupt_answer = corrupt_answer
        self.rx = bytearray()
        self.tx = bytearray()
        self.requests = []

    def write(self, data):
        self.rx += data
        while len(self.rx) >= 5:
            start = self.rx.find(bytes([P.SYNC]))
            if start < 0:
                self.rx.clear()
                return
            del self.rx[:start]
            length = self.rx[2] | self.rx[3] << 8
            if len(self.rx) < length + 5:
                return
            frame = bytes(self.rx[:length + 5])
            del self.rx[:length + 5]
            self.tx += self.answer(frame)

    def answer(self, frame):
        ftype, payload = frame[1], frame[4:-1]
        self.requests.append(ftype)
        if P.crc8(frame[1:-1]) != frame[-1]:
            return P.encode_frame(P.T_ERROR, bytes([P.E_CHECKSUM]))
        if ftype == P.T_INFO:
            n = len(record_fields(self.model))
            return P.encode_frame(P.T_INFO_REPLY, P.info_payload(self.model["C"], n,
                                                                 self.fingerprint))
        if ftype != P.T_INFER:
            return P.encode_frame(P.T_ERROR, bytes([P.E_TYPE]))
        x = np.frombuffer(payload, np.int8).reshape(101, 32).T
        g = golden.run(self.model, x)
        words = {f"logit{k}": int(v) & 0xFFFFFFFF for k, v in enumerate(g["logits"])}
        words["class"] = g["class"]
        words.update({f"gate_count{f}": int(v) for f, v in enumerate(g["gate_counts"])})
        words["cycles"] = 12345
        body = b"".join(words.get(n, 0).to_bytes(4, "little") for n in record_fields(self.model))
        out = P.encode_frame(P.T_RESULT, body)
        if self.corrupt_answer:
            out = out[:-1] + bytes([out[-1] ^ 1])
        return out

    def read(self, n=1):
        data, self.tx[:] = bytes(self.tx[:n]), self.tx[n:]
        return data

    @property
    def in_waiting(self):
        return len(self.tx)

    def reset_input_buffer(self):
        self.tx.clear()


@pytest.fixture
def model():
    return random_export(4, seed=2)


def test_link_errors(model):
    link = host.BoardLink(ser=ScriptedBoard(model, corrupt_answer=True), timeout=0.5)
    with pytest.raises(host.LinkError, match="garbled answer"):
        link.infer(model, np.zeros((32, 101), int))
    silent = ScriptedBoard(model)
    silent.write = lambda data: None
    with pytest.raises(host.LinkError, match="no answer from the board"):
        host.BoardLink(ser=silent, timeout=0.2).info()
    board = ScriptedBoard(model)
    link = host.BoardLink(ser=board, timeout=0.5)
    with pytest.raises(host.BoardErrorFrame, match="unknown frame type"):
        link._answer(link.transact(P.encode_frame(0x55, b"")), P.decode_info)


def test_loopback_port_is_reported_not_crashed(model):
    link = host.BoardLink("loop://", timeout=0.5)     # pyserial loopback echoes the request
    with pytest.raises(host.LinkError, match="unexpected answer"):
        link.info()


def test_run_with_a_board_from_another_export(tmp_path, model, monkeypatch, capsys):
    """Warned, golden check skipped, the answer still decoded."""
    from sparknet_hw.quant.export import write_export

    export = write_export(model, tmp_path)
    x = np.random.default_rng(0).integers(-128, 128, (32, 101)).astype(np.int8)
    clips = [str(tmp_path / "c0.npy")]
    np.save(clips[0], x)
    monkeypatch.setattr(host, "open_serial",
                        lambda port, baud, timeout=0.1: ScriptedBoard(model, fingerprint=1))
    code = cli.main(["run", "--port", "/dev/fake", "--export", str(export), clips[0]])
    cap = capsys.readouterr()
    assert code == 0 and "fingerprint differs" in cap.err and "class" in cap.out
