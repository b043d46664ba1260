"""Board-level simulation: the whole UART design as Verilog, driven bit by bit on its rx pin.

`simulate_board()` (called from pytest or the pipeline) writes the Verilog of a
`UARTAccelerator`, builds it with the cocotb runner (Icarus by default) and runs the cocotb
test `board_session` below, which sends each step's bytes as UART frames on `rx`, decodes
the board's answers on `tx` with boards/protocol.py and saves them. The caller compares them
with the golden model, so failures show as plain Python diffs.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

PLAN_ENV = "SPARKNET_BOARD_PLAN"
CLOCK_NS = 10


def simulate_board(core, steps: list[dict], build_dir, simulator: str = "icarus",
                   toplevel: str = "sparknet_board", verbose: bool = False) -> dict:
    """Run `steps` against `core` (a boards.top.UARTAccelerator).

    Each step: {"send": bytes, "expect": number of answer frames to wait for,
                "max_cycles": cycle budget for them, "pause_cycles": idle cycles after}.
    Returns {"steps": [{"frames": [(type, payload bytes)], "cycles": ..., "errors": [...]}],
             "seconds": wall time}.
    """
    from cocotb_tools.runner import get_runner

    from .top import board_verilog

    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    verilog = build_dir / f"{toplevel}.v"
    text = board_verilog(core, toplevel)
    if simulator == "icarus":
        try:   # the simulation owner's fix-up of Yosys Verilog for Icarus' time-0 semantics
            from sparknet_hw.sim.runner import icarus_fixup
            text = icarus_fixup(text)
        except ImportError:
            pass
    verilog.write_text(text)
    plan_path = build_dir / "board_plan.json"
    out_path = build_dir / "board_answers.json"
    if out_path.exists():
        out_path.unlink()
    plan_path.write_text(json.dumps({
        "divisor": core.divisor, "out": str(out_path),
        "steps": [{"send": bytes(s["send"]).hex(), "expect": int(s.get("expect", 1)),
                   "max_cycles": int(s.get("max_cycles", 2_000_000)),
                   "pause_cycles": int(s.get("pause_cycles", 0))} for s in steps]}))
    start = time.monotonic()
    from sparknet_hw.sim.runner import VERILATOR_BUILD_ARGS, setup_verilator, verilator_make_flags
    if simulator == "verilator":
        setup_verilator()
    runner = get_runner(simulator)
    # Icarus: the runner passes -g2012, under which Yosys' time-0 trigger of `always @*` blocks
    # (a reg with an initializer) never fires and combinational outputs of a state machine
    # that stays in its reset state keep X/0; Verilog-2005 semantics (a later -g wins) do
    # fire. (icarus_fixup above covers the same; both are harmless together.)
    build_args = ["-g2005"] if simulator == "icarus" else VERILATOR_BUILD_ARGS
    with verilator_make_flags(simulator):
        runner.build(sources=[verilog], hdl_toplevel=toplevel, build_dir=build_dir / simulator,
                     timescale=("1ns", "1ps"), build_args=build_args, always=True,
                     log_file=build_dir / f"{simulator}_build.log")
    env = {PLAN_ENV: str(plan_path), "COCOTB_LOG_LEVEL": "WARNING" if not verbose else "INFO"}
    pythonpath = os.pathsep.join(p for p in (str(Path(__file__).resolve().parents[1]),
                                             os.environ.get("PYTHONPATH", "")) if p)
    env["PYTHONPATH"] = pythonpath
    runner.test(hdl_toplevel=toplevel, test_module="sparknet_hw.boards.cocotb_board",
                testcase="board_session", build_dir=build_dir / simulator,
                test_dir=build_dir, extra_env=env, timescale=("1ns", "1ps"),
                results_xml=str(build_dir / "board_results.xml"),
                log_file=build_dir / f"{simulator}_run.log")
    if not out_path.exists():
        log = build_dir / f"{simulator}_run.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"board simulation produced no answers; log tail:\n{tail}")
    result = json.loads(out_path.read_text())
    for step in result["steps"]:
        step["frames"] = [(t, bytes.fromhex(p)) for t, p in step["frames"]]
    result["seconds"] = time.monotonic() - start
    return result


try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.simtime import get_sim_time
    from cocotb.triggers import ClockCycles, FallingEdge, First, Timer
except ImportError:   # only the simulator process needs cocotb
    cocotb = None


if cocotb is not None and os.environ.get(PLAN_ENV):

    async def _send(line, data: bytes, bit_ns: int) -> None:
        for byte in data:
            for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                line.value = bit
                await Timer(bit_ns, unit="ns")

    async def _receive(line, bit_ns: int, on_byte) -> None:
        while True:
            await FallingEdge(line)
            await Timer(bit_ns * 3 // 2, unit="ns")
            value = 0
            for i in range(8):
                value |= int(line.value) << i
                await Timer(bit_ns, unit="ns")
            on_byte(value, int(line.value))

    @cocotb.test()
    async def board_session(dut):
        from cocotb.triggers import Event

        from sparknet_hw.boards.protocol import FrameDecoder, ProtocolError

        plan = json.loads(Path(os.environ[PLAN_ENV]).read_text())
        bit_ns = plan["divisor"] * CLOCK_NS
        Clock(dut.clk, CLOCK_NS, unit="ns").start()
        dut.rx.value = 1
        dut.rst.value = 1
        await ClockCycles(dut.clk, 4)
        dut.rst.value = 0
        await ClockCycles(dut.clk, 4)

        decoder = FrameDecoder()
        frames, errors, raw = [], [], bytearray()
        arrived = Event()

        def on_byte(value, stop):
            raw.append(value)
            if not stop:
                errors.append("missing stop bit on tx")
            try:
                for frame in decoder.feed(bytes([value])):
                    frames.append((frame.type, frame.payload.hex()))
                    arrived.set()
            except ProtocolError as exc:
                errors.append(str(exc))

        cocotb.start_soon(_receive(dut.tx, bit_ns, on_byte))
        results = []
        for step in plan["steps"]:
            frames.clear()
            errors.clear()
            raw.clear()
            t0 = get_sim_time("ns")
            await _send(dut.rx, bytes.fromhex(step["send"]), bit_ns)
            limit = get_sim_time("ns") + step["max_cycles"] * CLOCK_NS
            while len(frames) < step["expect"]:
                remaining = limit - get_sim_time("ns")
                if remaining <= 0:
                    errors.append(f"timed out waiting for {step['expect']} answer frame(s), "
                                  f"got {len(frames)}")
                    break
                arrived.clear()
                await First(arrived.wait(), Timer(int(remaining), unit="ns"))
            if step["pause_cycles"]:
                await ClockCycles(dut.clk, step["pause_cycles"])
            t1 = get_sim_time("ns")
            results.append({"frames": list(frames), "errors": list(errors), "raw": raw.hex(),
                            "cycles": int((t1 - t0) // CLOCK_NS),
                            "leds": int(dut.leds.value)})
        Path(plan["out"]).write_text(json.dumps({"steps": results}))
