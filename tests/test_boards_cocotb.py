"""The whole board design (UART -> deframer -> accelerator -> framer -> UART) as Verilog under
cocotb, driven bit by bit on its rx pin with the host's own protocol code: Verilator with the
real accelerator (on Icarus too under `pytest -m slow`: ~2 CPU-minutes), Icarus with a
stand-in accelerator."""
import json
import shutil

import numpy as np
import pytest

from sparknet_hw import cli
from sparknet_hw.boards import host
from sparknet_hw.boards import protocol as P
from sparknet_hw.boards.cocotb_board import simulate_board
from sparknet_hw.boards.standin import StandInAccelerator, standin_record
from sparknet_hw.boards.top import LED_ERROR, LED_VALID, UARTAccelerator
from sparknet_hw.quant import golden
from sparknet_hw.quant.export import write_export
from sparknet_hw.quant.random_export import random_export
from sparknet_hw.rtl.record import decode_record
from sparknet_hw.sim.schedule import compare, predict

pytestmark = [pytest.mark.sim,
              pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")]

DIVISOR = 4          # clock cycles per UART bit in simulation (115200 baud is 104 at 12 MHz)
TIMEOUT = 600        # cycles allowed between two bytes of a frame


def real_clip(model):
    """One shipped real test clip, quantized with the export's input format."""
    from sparknet_hw.sim.stimuli import real_clips

    clips = real_clips(model, 1)
    if clips is None:
        return np.random.default_rng(5).integers(-128, 128, (32, 101))
    return clips[0]


class RecordedBoard:
    """A pyserial-like port that plays back a simulated board session: each write must be
    the bytes the simulated board received in that step (so the host sent exactly what was
    simulated), and reads return the bytes its tx pin sent back, unchanged."""

    def __init__(self, steps, answers):
        self.session = [(bytes(s["send"]), bytes.fromhex(a["raw"])) for s, a in zip(steps, answers)]
        self.pending = bytearray()

    def write(self, data):
        assert self.session, "the host sent more requests than the simulated session had"
        sent, answer = self.session.pop(0)
        assert bytes(data) == sent, "the host's request differs from the simulated one"
        self.pending += answer

    def read(self, n=1):
        data, self.pending[:] = bytes(self.pending[:n]), self.pending[n:]
        return data

    @property
    def in_waiting(self):
        return len(self.pending)

    def reset_input_buffer(self):
        pass

    def close(self):
        pass


@pytest.mark.parametrize("simulator", [
    "verilator", pytest.param("icarus", marks=pytest.mark.slow)])
def test_board_uart_accelerator_against_golden(tmp_path, simulator, monkeypatch, capsys):
    """The real accelerator behind the UART: INFO, one clip checked against the golden
    model, a corrupt frame answered with an error code, and the board still answers. The
    host driver and the `run` command then decode the bytes the simulated board sent."""
    from sparknet_hw.rtl import HwConfig, SparkNetAccelerator
    try:
        from sparknet_hw.sim.stimuli import balanced_export
        model = balanced_export(4, seed=3)          # gates open part of the time
    except ImportError:
        model = random_export(4, seed=3)
    x = real_clip(model)
    core = UARTAccelerator(SparkNetAccelerator(model, HwConfig()), model, DIVISOR, TIMEOUT)
    steps = [{"send": P.encode_info()},
             {"send": P.encode_infer(x), "max_cycles": 500_000},
             {"send": P.encode_frame(0x42, b"\x07"), "pause_cycles": 2 * TIMEOUT},
             {"send": P.encode_info()}]
    # Icarus needs minutes for this clip behind a UART, so only the slow run has it; the
    # default Icarus run of the board top is test_board_uart_error_paths_standin below.
    got = simulate_board(core, steps, tmp_path, simulator=simulator)["steps"]
    assert [s["errors"] for s in got] == [[]] * len(steps)
    info = P.decode_info(P.Frame(*got[0]["frames"][0]))
    assert info == {"version": P.PROTOCOL_VERSION, "C": 4, "record_words": core.n_words,
                    "fingerprint": P.export_fingerprint(model)}
    rec = P.decode_result(model, P.Frame(*got[1]["frames"][0]))
    want = golden.run(model, x)
    assert rec["logits"] == want["logits"].tolist()
    assert rec["class"] == want["class"]
    assert rec["gate_counts"] == want["gate_counts"].tolist()
    issued = {name: layer["issued"] for name, layer in rec["layers"].items()}
    assert issued == {**golden.nonzero_products(model, want),
                      "classifier": 12 * int(want["gate_counts"].sum())}
    assert rec["frames_skipped"] == int((~want["gate"].astype(bool).any(axis=0)).sum())
    assert compare(predict(model, HwConfig(), x), rec) == []     # every counter, exactly
    assert P.error_code(P.Frame(*got[2]["frames"][0])) == P.E_TYPE
    assert P.decode_info(P.Frame(*got[3]["frames"][0]))["C"] == 4
    leds = got[3]["leds"]
    assert leds & 0xF == rec["class"] & 0xF and leds >> LED_VALID & 1 and leds >> LED_ERROR & 1

    link = host.BoardLink(ser=RecordedBoard(steps, got), timeout=1.0)
    assert link.info() == info
    assert link.infer(model, x) == rec
    with pytest.raises(host.BoardErrorFrame, match="unknown frame type"):
        link._answer(link.transact(steps[2]["send"]), P.decode_info)

    # `run` on a feature file, through the same two simulated answers
    export = write_export(model, tmp_path)
    np.save(tmp_path / "clip.npy", x.astype(np.int8))
    monkeypatch.setattr(host, "open_serial",
                        lambda port, baud, timeout=0.1: RecordedBoard(steps[:2], got[:2]))
    capsys.readouterr()
    code = cli.main(["run", "--port", "/dev/sim", "--export", str(export), "--json",
                     str(tmp_path / "clip.npy")])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["golden_match"] is True and out["cycles"] == rec["cycles"]


def test_board_uart_error_paths_standin(tmp_path):
    """Bad checksum after a whole clip and a clip cut short (timeout): the clip that already
    went to the accelerator is finished and its result dropped, an error frame goes out, and
    the next frame works. A tiny stand-in accelerator keeps this fast."""
    model = random_export(4, seed=5)
    x = np.random.default_rng(5).integers(-128, 128, (32, 101))
    core = UARTAccelerator(StandInAccelerator(model), model, DIVISOR, TIMEOUT)
    bad = bytearray(P.encode_infer(x))
    bad[100] ^= 0x10                                    # one feature byte flipped
    steps = [{"send": bytes(bad), "max_cycles": 50_000},
             {"send": P.encode_infer(x)[:400], "max_cycles": 50_000},
             {"send": P.encode_infer(x), "max_cycles": 50_000}]
    got = simulate_board(core, steps, tmp_path)["steps"]
    assert [s["errors"] for s in got] == [[]] * len(steps)
    assert P.error_code(P.Frame(*got[0]["frames"][0])) == P.E_CHECKSUM
    assert P.error_code(P.Frame(*got[1]["frames"][0])) == P.E_TIMEOUT
    rec = P.decode_result(model, P.Frame(*got[2]["frames"][0]))
    assert rec == decode_record(model, standin_record(model, x, cycles=rec["cycles"]))
