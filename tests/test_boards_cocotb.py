"""The whole board design (UART -> deframer -> accelerator -> framer -> UART) as Verilog under
cocotb, driven bit by bit on its rx pin with the host's own protocol code: Verilator with the
real accelerator (on Icarus too under `pytest -m slow`: ~2 CPU-minutes), Icarus with a
stand-in accelerator."""
import os
import shutil

import numpy as np
import pytest

from sparknet_hw.boards import protocol as P
from sparknet_hw.boards.cocotb_board import simulate_board
from sparknet_hw.boards.standin import StandInAccelerator, standin_record
from sparknet_hw.boards.top import LED_ERROR, LED_VALID, UARTAccelerator
from sparknet_hw.quant import golden
from sparknet_hw.quant.random_export import random_export
from sparknet_hw.rtl.record import decode_record

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


@pytest.mark.parametrize("simulator", [
    "verilator", pytest.param("icarus", marks=pytest.mark.slow)])
def test_board_uart_accelerator_against_golden(tmp_path, simulator):
    """The real accelerator behind the UART: INFO, one clip checked against the golden
    model, a corrupt frame answered with an error code, and the board still answers."""
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
    assert rec["cycles"] > 0 and rec["macs_issued"] > 0
    assert P.error_code(P.Frame(*got[2]["frames"][0])) == P.E_TYPE
    assert P.decode_info(P.Frame(*got[3]["frames"][0]))["C"] == 4
    leds = got[3]["leds"]
    assert leds & 0xF == rec["class"] & 0xF and leds >> LED_VALID & 1 and leds >> LED_ERROR & 1


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
