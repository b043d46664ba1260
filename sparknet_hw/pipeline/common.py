"""What the build, the report and the bench share: the options of a build, the plan
resolved from them, the typed outputs of each stage, the build error and small helpers
(progress lines, atomic JSON). No stage logic lives here; it has no imports of its own
siblings, so `build`, `report` and `bench` can all import it without cycles.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..quant.export_types import Export

MARKER = ".sparknet_build"
STAGES = ("export", "rtl", "verify", "synth", "report")
WIDTHS = (4, 8, 16, 32)


class BuildError(UserError):
    pass


# ---------------------------------------------------------------- options and stage outputs

@dataclass
class BuildOptions:
    C: int = 8
    board: str | None = None
    device: str | None = None
    clock_mhz: float | None = None
    pll_mhz: float | None = None
    checkpoint: Path | None = None
    export: Path | None = None
    out: Path | None = None
    simulator: str = "verilator"
    inputs: Path | None = None
    clips: int | None = None
    synth: bool = True
    force: bool = False
    baud: int = 115200
    pes: int | None = None
    zero_skip: str | None = None        # "all" | "1x1" | "off"; None: the family's default
    rom_style: str | None = None        # "auto" | "block"; None: the family's default
    depthwise: str | None = None        # "frames" | "channels" (block 2..4 depthwise with skip
                                        # "all"); None: the family's default
    classifier_adders: int | None = None   # classes added per cycle; None: the family's default
    accumulators: str | None = None        # "fabric" or "dsp" (UltraPlus); None: "fabric"
    seed: int | None = None
    place_seed: int | None = None          # nextpnr's placement seed; None: nextpnr's own
    quiet: bool = False


@dataclass
class Plan:
    """Everything resolved and checked before the first stage runs."""
    options: BuildOptions
    spec: object                      # boards.platforms.BoardSpec
    hw: object                        # rtl.HwConfig
    out: Path
    divisor: int
    timeout_cycles: int
    clock_mhz: float


@dataclass
class ExportOut:
    model: Export
    path: Path
    origin: str                       # "export file", "checkpoint", "shipped export", ...


@dataclass
class RtlOut:
    accel_verilog: Path
    board_verilog: Path
    make_core: object                 # () -> boards.top.UARTAccelerator (what is synthesized)
    resources: object = None          # boards.resources.Needs: the estimate before synthesis


@dataclass
class VerifyOut:
    sim: dict                         # sparknet_hw.sim.runner.run_sim report
    inputs: np.ndarray                # int clips that were simulated
    labels: np.ndarray | None
    names: list
    accuracy: float | None
    gate_map: np.ndarray              # [32, T] gates of clip 0 (golden, counts checked)
    path: Path


@dataclass
class SynthOut:
    result: object | None             # boards.synth.SynthResult
    bitstream: Path | None


@dataclass
class ReportOut:
    json_path: Path
    md_path: Path
    plots: list = field(default_factory=list)
    report: dict = field(default_factory=dict)


# ---------------------------------------------------------------- helpers

def _say(plan_or_opts, text: str) -> None:
    opts = plan_or_opts.options if isinstance(plan_or_opts, Plan) else plan_or_opts
    if not opts.quiet:
        print(text, flush=True)


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")
    tmp.replace(path)


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(type(obj).__name__)
