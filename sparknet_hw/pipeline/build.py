"""`build`: export -> Verilog -> cocotb verification on real clips -> bitstream -> report.

The build flow. Each stage is a function with typed inputs and outputs (pipeline.common).
`run_build()` checks every option first (`prepare`: one-line UserErrors before anything slow
starts; an impossible --pll-mhz included), then runs the stages in order with progress and
timings. The rtl stage checks, before any Verilog is written, that the design fits the
board's FPGA (`check_resources`, boards/resources.py: DSPs and block RAMs exactly, logic
estimated), so a misfit fails seconds in, not after synthesis. A failing stage is named;
the outputs of earlier stages stay in the build directory; report.json / report.md are
written last (atomically, pipeline.report), so a directory without them holds no finished
result. The default accelerator per FPGA family (DEFAULT_HW) is resolved here too.
"""
from __future__ import annotations

import shutil
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from .. import shipped as shipped_files
from ..errors import UserError
from ..quant.export_types import Export, as_export
from .common import (MARKER, STAGES, WIDTHS, BuildError, BuildOptions, ExportOut, Plan,
                     ReportOut, RtlOut, SynthOut, VerifyOut, _say, _write_json)
from .energy import start_activity
from .report import pll_hint, stage_report

# The default accelerator per FPGA family: the fastest one measured to fit the family's default
# board (`bench`, docs/accelerator.md). iCEBreaker (UP5K: 5,280 LCs, 30 block RAMs, 4 SPRAMs):
# the activation buffers in SPRAM and a 2-adder classifier free 9-11 block RAMs and ~400
# cells, so C = 4 and 8 take 4 PEs (5,039 and 5,165 cells, 855 and 1,332 us); C = 16 keeps 2
# (4,456 cells, 5,132 us; 4 PEs fit too, at 5,257 cells, too close to the edge for a default);
# depthwise zero skipping does not fit (+1.3k LUT4s), 1x1 skipping does, with the read-only
# tables in block RAM. ULX3S (ECP5-25F): 16 PEs, all skipping; the frame-parallel depthwise
# shortens C = 8 by 20 % (279.4 -> 222.8 us, +3.2k LUTs) but C = 32 by 1 % (778 -> 771 us)
# for +7.5k LUTs and 52 of the 56 block RAMs, so C = 32 keeps the channel-parallel one.
# `--pes`, `--skip`, `--rom-style`, `--depthwise`, `--classifier-adders` override it.
DEFAULT_HW = {"ice40": {"pes": 4, "skip": "1x1", "rom_style": "block", "fifo_depth": 2,
                        "depthwise": "frames", "classifier_adders": 2},
              "ecp5": {"pes": 16, "skip": "all", "rom_style": "auto", "fifo_depth": 4,
                       "depthwise": "frames", "classifier_adders": 12}}
ICE40_WIDE_C = 16
ICE40_WIDE = {"pes": 2}
ECP5_WIDE_C = 32
ECP5_WIDE = {"depthwise": "channels"}


def default_hw(family: str, C: int) -> dict:
    hw = dict(DEFAULT_HW[family])
    if family == "ice40" and C >= ICE40_WIDE_C:
        hw.update(ICE40_WIDE)
    if family == "ecp5" and C >= ECP5_WIDE_C:
        hw.update(ECP5_WIDE)
    return hw


def activation_ram(spec, pes: int, lane_bits: int = 8) -> str:
    """"spram" where the device's single-port RAMs hold both activation buffers (X and B,
    each P lanes of `lane_bits`: one SB_SPRAM256KA per 16 bits), else "block". `prepare`
    assumes 8-bit lanes; `stage_export` corrects it from the export."""
    from ..rtl.spram import sprams_for

    device = spec.device
    need = 2 * sprams_for(pes * lane_bits)
    return "spram" if device is not None and 0 < need <= device.sprams else "block"


def _ultraplus(spec) -> bool:
    return spec.device is not None and spec.device.part.startswith("iCE40UP")


SIM_DIVISOR_NOTE = "UART timing is simulated by the board test (tests/test_boards_cocotb.py)"


# ---------------------------------------------------------------- checks before any stage

def prepare(opts: BuildOptions) -> Plan:
    from ..boards.platforms import resolve
    from ..boards.uart import uart_divisor
    from ..rtl import HwConfig

    if opts.C not in WIDTHS:
        raise BuildError(f"unsupported width C={opts.C}: SparkNet is defined for C in "
                         f"{list(WIDTHS)}")
    spec = resolve(opts.board, opts.device, opts.clock_mhz, opts.pll_mhz)
    clock = spec.clock_mhz * 1e6
    divisor = uart_divisor(clock, opts.baud)
    if opts.export is not None and opts.checkpoint is not None:
        raise BuildError("give either --export or --checkpoint, not both")
    if opts.export is not None and not Path(opts.export).exists():
        raise BuildError(f"{opts.export}: no such export file")
    if opts.checkpoint is not None:
        from ..checkpoint import load_checkpoint
        load_checkpoint(opts.checkpoint, kind="qat", C=opts.C)   # one-line CheckpointError
    if opts.inputs is not None and not Path(opts.inputs).is_file():
        raise BuildError(f"{opts.inputs}: no such inputs file")
    if opts.simulator not in ("icarus", "verilator"):
        raise BuildError(f"unknown simulator {opts.simulator!r}; choose icarus or verilator")
    if opts.clips is not None and opts.clips < 1:
        raise BuildError("--clips must be at least 1")
    default = default_hw(spec.family, opts.C)
    pes = opts.pes or default["pes"]
    if not (1 <= pes <= 16 and pes & (pes - 1) == 0):
        raise BuildError(f"--pes {pes}: the PE array needs a power of two from 1 to 16 lanes")
    from ..rtl.pe_array import ACCUMULATORS
    if opts.accumulators is not None and opts.accumulators not in ACCUMULATORS:
        raise BuildError(f"--accumulators {opts.accumulators}: choose one of "
                         f"{', '.join(ACCUMULATORS)}")
    if opts.accumulators == "dsp" and not _ultraplus(spec):
        raise BuildError(f"--accumulators dsp puts each PE's sums in SB_MAC16 accumulators, "
                         f"which only an iCE40 UltraPlus has ({spec.name} has "
                         f"{spec.device.part if spec.device else 'another part'}); use "
                         f"--accumulators fabric")
    skip = default["skip"] if opts.zero_skip is None else opts.zero_skip
    hw = HwConfig(rows=1, cols=pes, fifo_depth=default["fifo_depth"],
                  rom_style=opts.rom_style or default["rom_style"],
                  dw_frames=(opts.depthwise or default["depthwise"]) == "frames",
                  activation_ram=activation_ram(spec, pes),
                  classifier_adders=opts.classifier_adders or default["classifier_adders"],
                  # "dsp" is not the default: measured at C = 8 (docs/accelerator.md) it frees
                  # 137 cells and places 0-1.6 MHz slower, and the sequencer sets the Fmax
                  accumulators=opts.accumulators or "fabric",
                  ).with_skip(skip)
    out = Path(opts.out) if opts.out else Path("build") / f"sparknet_C{opts.C}_{spec.name}"
    _check_out_dir(out, opts.force)
    return Plan(opts, spec, hw, out, divisor, int(clock * 0.05), clock / 1e6)


def _check_out_dir(out: Path, force: bool) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise BuildError(f"{out} exists and is not a directory")
    if not any(out.iterdir()):
        return
    if not force:
        raise BuildError(f"{out} already exists; pass --force to replace it or --out DIR")
    if not (out / MARKER).exists():
        raise BuildError(f"{out} exists and is not a sparknet build directory; not replacing "
                         f"it even with --force (choose another --out)")


def _fresh_out_dir(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("sparknet-hw build directory; `build --force` may replace it\n")


# ---------------------------------------------------------------- stages

def stage_export(plan: Plan) -> ExportOut:
    """The integer model (--export, --checkpoint, or the shipped export for C).

    Without any of them (development only, with a warning) a random export."""
    from ..quant.export_format import load_export

    opts = plan.options
    if opts.export is not None:
        model, origin = load_export(opts.export), f"export file {opts.export}"
    elif opts.checkpoint is not None:
        from ..quant.export import export_model
        model, origin = export_model(opts.checkpoint), f"checkpoint {opts.checkpoint}"
    else:
        shipped = shipped_files.int8_export(opts.C)
        if shipped.is_file():
            model, origin = load_export(shipped), f"shipped export {shipped.name}"
        else:
            print(f"warning: no shipped export {shipped.name}; building a RANDOM export "
                  f"(C={opts.C}) for development -- accuracy figures are meaningless",
                  file=sys.stderr, flush=True)
            try:
                from ..sim.stimuli import balanced_export
                model, origin = balanced_export(opts.C), "random export (balanced biases)"
            except ImportError:
                from ..quant.random_export import random_export
                model, origin = random_export(opts.C), "random export"
    model = as_export(model, origin)
    if model.C != opts.C:
        raise BuildError(f"the export is for C={model.C} but --C {opts.C} was asked for")
    _fit_activation_ram(plan, model)
    from ..quant.export import write_export
    path = write_export(model, plan.out)
    return ExportOut(model, path, origin)


def _fit_activation_ram(plan: Plan, model: Export) -> None:
    """`prepare` chose X and B's RAM for 8-bit lanes; the export's activations set the real
    lane width (wider lanes need more SPRAMs per buffer, narrower ones fewer)."""
    from dataclasses import replace

    from ..rtl import build_plan

    lane_bits = build_plan(model, plan.hw).lane_bits
    ram = activation_ram(plan.spec, plan.hw.pes, lane_bits)
    if ram != plan.hw.activation_ram:
        plan.hw = replace(plan.hw, activation_ram=ram)


def stage_rtl(plan: Plan, exp: ExportOut, check: bool = True) -> RtlOut:
    """Verilog of the accelerator and of the board design (UART + framing + accelerator)."""
    from ..boards.top import UARTAccelerator, board_verilog
    from ..rtl import SparkNetAccelerator, build_plan, generate_verilog

    build_plan(exp.model, plan.hw)                  # HwConfigError if the export does not fit

    def make_core():
        return UARTAccelerator(SparkNetAccelerator(exp.model, plan.hw), exp.model,
                               plan.divisor, plan.timeout_cycles)

    needs = estimate_resources(plan, make_core)
    if check:
        check_resources(plan, needs)
    accel_v = plan.out / "sparknet_accel.v"
    accel_v.write_text(generate_verilog(exp.model, plan.hw))
    board_v = plan.out / "sparknet_board.v"
    board_v.write_text(board_verilog(make_core()))
    return RtlOut(accel_v, board_v, make_core, needs)


def estimate_resources(plan: Plan, make_core):
    """What the board design needs of the FPGA, before synthesis (boards/resources.py):
    multipliers and block RAMs exactly, logic as an estimated band."""
    from ..boards.resources import estimate

    return estimate(make_core(), plan.spec.family)


def check_resources(plan: Plan, needs) -> None:
    """Fail before synthesis when the design cannot fit the board's FPGA (ResourceShortage,
    a DoesNotFit: what it needs against what the chip has, and what to try instead). With
    --no-synth the same finding is only printed: the Verilog and the simulation stay useful."""
    from ..boards.resources import ResourceShortage, check

    device = plan.spec.device
    if device is None or needs is None:
        return
    where = f"--device {plan.spec.name}" if plan.options.device else plan.spec.name
    try:
        notes = check(needs, device, where, plan.hw)
    except ResourceShortage as exc:
        if plan.options.synth:
            raise
        notes = [f"{exc} (not synthesized: --no-synth)"]
    for note in notes:
        _say(plan, f"      note: {note}")


def load_clips(plan: Plan, model: Export):
    """(int clips [N, 32, T], labels or None, names) from --inputs or the shipped clips
    (sparknet_hw.clips: float MFCC quantized, integer features range-checked)."""
    from ..clips import load_clip_batch, shipped_clips

    opts = plan.options
    if opts.inputs is not None:
        batch = load_clip_batch(opts.inputs, model, n=opts.clips)
    else:
        batch = shipped_clips(model, n=opts.clips)
    if batch is None:                   # no shipped clips: random ones (development)
        rng = np.random.default_rng(0)
        x = rng.integers(model.input.lo, model.input.hi + 1,
                         size=(4, model.features, model.frames))[:opts.clips]
        return x.astype(np.int64), None, [f"clip{i}" for i in range(len(x))]
    return batch.features, batch.labels, batch.names


def stage_verify(plan: Plan, exp: ExportOut, rtl: RtlOut) -> VerifyOut:
    """cocotb simulation on real clips against the golden model (logits, class, gates)."""
    from ..quant import golden
    from ..sim import run_sim

    x, labels, names = load_clips(plan, exp.model)
    sim = run_sim(exp.model, x, simulator=plan.options.simulator, hw_config=plan.hw,
                  seed=plan.options.seed)
    path = plan.out / "sim_report.json"
    _write_json(path, sim)
    if sim["mismatches"] or sim.get("counter_errors"):
        details = "; ".join(str(d) for d in (sim.get("mismatch_details") or [])[:3])
        raise BuildError(f"the RTL disagrees with the golden model on {sim['mismatches']} of "
                         f"{sim['inferences']} clips{': ' + details if details else ''}"
                         f"{' (counter errors)' if sim.get('counter_errors') else ''}; "
                         f"see {path}")
    accuracy = None
    if labels is not None and len(sim.get("classes", [])) == len(labels):
        accuracy = float(np.mean(np.asarray(sim["classes"]) == np.asarray(labels)))
    gate_map = golden.run(exp.model, x[0])["gate"].astype(np.uint8)
    return VerifyOut(sim, x, labels, names, accuracy, gate_map, path)


def stage_synth(plan: Plan, rtl: RtlOut) -> SynthOut:
    """Synthesis, place and route, bitstream (amaranth-boards + YoWASP)."""
    if not plan.options.synth:
        _say(plan, "      skipped (--no-synth)")
        return SynthOut(None, None)
    from ..boards.platforms import BoardTop
    from ..boards.synth import synthesize

    result = synthesize(BoardTop(rtl.make_core(), plan.spec), plan.spec, plan.out / "synth",
                        seed=plan.options.place_seed,
                        quiet=plan.options.quiet, config=plan.hw)
    src = Path(result.bitstream)
    bit = plan.out / f"sparknet_C{plan.options.C}_{plan.spec.name}{src.suffix}"
    shutil.copyfile(src, bit)
    return SynthOut(result, bit)


# ---------------------------------------------------------------- driver

def run_build(opts: BuildOptions) -> ReportOut:
    plan = prepare(opts)
    _fresh_out_dir(plan.out)
    where = f"--device {plan.spec.name}" if opts.device else plan.spec.name
    _say(plan, f"building SparkNet C={opts.C} for {where} ({plan.spec.description}) "
               f"into {plan.out}")
    timings: dict = {}
    outputs: dict = {}

    def stage(i, name, fn, *args):
        title = ((fn.__doc__ or "").strip().splitlines() or [""])[0]
        _say(plan, f"[{i}/{len(STAGES)}] {name}: {title}")
        start = time.monotonic()
        try:
            result = fn(*args)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:   # noqa: BLE001 - every failure names its stage
            seconds = time.monotonic() - start
            if isinstance(exc, UserError):
                msg = str(exc)
            elif isinstance(exc, SystemExit):
                msg = f"a tool exited with status {exc.code}"
            else:
                msg = f"{type(exc).__name__}: {exc}"
            log = plan.out / "failed_stage.log"
            log.write_text(f"stage {name} failed after {seconds:.1f} s\n\n"
                           + "".join(traceback.format_exception(exc)))
            done = ", ".join(outputs) or "none"
            # a half-elaborated design leaves Amaranth "never used" warnings for exit time
            import warnings
            warnings.simplefilter("ignore")
            raise BuildError(f"stage {i}/{len(STAGES)} '{name}' failed after {seconds:.1f} s: "
                             f"{msg} (finished stages: {done}; their outputs are in "
                             f"{plan.out}; details in {log})") from None
        seconds = time.monotonic() - start
        timings[name] = round(seconds, 2)
        outputs[name] = result
        _say(plan, f"      {name} done in {seconds:.1f} s")
        return result

    exp = stage(1, "export", stage_export, plan)
    rtl = stage(2, "rtl", stage_rtl, plan, exp)
    ver = stage(3, "verify", stage_verify, plan, exp, rtl)
    activity = start_activity(plan, exp, ver)     # beside synthesis: one core each
    try:
        syn = stage(4, "synth", stage_synth, plan, rtl)
        rep = stage(5, "report", stage_report, plan, exp, rtl, ver, syn, timings, activity)
    finally:
        if activity is not None:
            activity.cancel()
    r = rep.report
    _say(plan, f"done: {r['inferences']} clips, {r['mismatches']} mismatches, "
               f"{r['cycles']:,.0f} cycles/inference"
               + (f", Fmax {r['fmax_mhz']:.1f} MHz, latency {r['latency_us']:,.1f} us, "
                  f"{r['luts']}/{r['luts_total']} LUTs, {r['dsps']}/{r['dsps_total']} DSPs"
                  if r["fmax_mhz"] else "")
               + f"\nreport: {rep.md_path}")
    hint = pll_hint(plan, r.get("fmax_mhz"), r["cycles"])
    if hint:
        _say(plan, hint)
    return rep
