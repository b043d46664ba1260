"""The whole board design (UART -> deframer -> accelerator -> framer -> UART) as Verilog under
cocotb + Icarus, driven bit by bit on its rx pin with the host's own protocol code."""
import shutil

import numpy as np
import pytest

from sparknet_hw.boards import protocol as P
from sparknet_hw.boards.cocotb_board import simulate_board
from sparknet_hw.boards.standin import StandInAccelerator, standin_record
from sparknet_hw.boards.top import UARTAccelerator
from sparknet_hw.quant.random_export import random_export
from sparknet_hw.rtl.record import decode_record

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")

DIVISOR = 8          # clock cycles per UART bit in simulation (115200 baud needs 104 at 12 MHz)
TIMEOUT = 1000       # cycles between bytes of a frame


def test_board_uart_standin(tmp_path):
    model = random_export(4, seed=5)
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, (32, 101))
    core = UARTAccelerator(StandInAccelerator(model), model, DIVISOR, TIMEOUT)
    bad = bytearray(P.encode_infer(x))
    bad[100] ^= 0x10                                    # corrupt one feature byte
    steps = [{"send": P.encode_info()},
             {"send": P.encode_infer(x), "max_cycles": 100_000},
             {"send": P.encode_frame(0x42, b"\x00\x01"), "pause_cycles": 2 * TIMEOUT},
             {"send": bytes(bad), "max_cycles": 100_000},
             {"send": P.encode_info()}]
    out = simulate_board(core, steps, tmp_path)
    got = out["steps"]
    for step in got:
        assert step["errors"] == []
    info = P.decode_info(P.Frame(*got[0]["frames"][0]))
    assert info == {"version": P.PROTOCOL_VERSION, "C": 4, "record_words": core.n_words,
                    "fingerprint": P.export_fingerprint(model)}
    frame = P.Frame(*got[1]["frames"][0])
    rec = P.decode_result(model, frame)
    want = decode_record(model, standin_record(model, x, cycles=rec["cycles"]))
    assert rec == want
    assert rec["cycles"] > 0
    assert P.error_code(P.Frame(*got[2]["frames"][0])) == P.E_TYPE
    assert P.error_code(P.Frame(*got[3]["frames"][0])) == P.E_CHECKSUM
    assert P.decode_info(P.Frame(*got[4]["frames"][0]))["C"] == 4
    # LEDs: class of the good clip, a result was shown, the last answer before INFO was an error
    leds = got[4]["leds"]
    assert leds & 0xF == rec["class"] and leds >> 4 & 1 == 1 and leds >> 5 & 1 == 1
