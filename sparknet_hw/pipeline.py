"""`build`: export -> Verilog -> cocotb verification on real clips -> bitstream -> report.

Each stage is a function with typed inputs and outputs (dataclasses below). `run_build()`
checks every option first (one-line UserErrors before anything slow starts), then runs the
stages in order with progress and timings. A failing stage is named; the outputs of earlier
stages stay in the build directory; report.json / report.md are written last (atomically),
so a directory without them holds no finished result.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import shipped as shipped_files
from .errors import UserError

MARKER = ".sparknet_build"
STAGES = ("export", "rtl", "verify", "synth", "report")
WIDTHS = (4, 8, 16, 32)
# The default accelerator per FPGA family: the fastest one measured to fit the family's default
# board (`bench`, docs/accelerator.md). iCEBreaker (UP5K: 5,280 LCs, 30 block RAMs): 2 PEs;
# depthwise zero skipping does not fit (+1.3k LUT4s), 1x1 skipping does once the read-only
# tables move to block RAM (-550 LUT4s, +8 EBRs); from C = 16 the activation buffers leave no
# block RAM for the tables, which stay in logic (C = 16 with 1x1 skipping: 5,207 / 5,280
# cells). ULX3S (ECP5-25F): 16 PEs, all skipping; the frame-parallel depthwise shortens C = 8 by 20 % (279.4 -> 222.8 us, +3.2k
# LUTs) but C = 32 by 1 % (778 -> 771 us) for +7.5k LUTs and 52 of the 56 block RAMs, so
# C = 32 keeps the channel-parallel one. `--pes`, `--skip`, `--rom-style`,
# `--depthwise` override it.
DEFAULT_HW = {"ice40": {"pes": 2, "skip": "1x1", "rom_style": "block", "fifo_depth": 2,
                        "depthwise": "frames"},
              "ecp5": {"pes": 16, "skip": "all", "rom_style": "auto", "fifo_depth": 4,
                       "depthwise": "frames"}}
ICE40_WIDE_C = 16
ICE40_WIDE = {"rom_style": "auto"}
ECP5_WIDE_C = 32
ECP5_WIDE = {"depthwise": "channels"}


def default_hw(family: str, C: int) -> dict:
    hw = dict(DEFAULT_HW[family])
    if family == "ice40" and C >= ICE40_WIDE_C:
        hw.update(ICE40_WIDE)
    if family == "ecp5" and C >= ECP5_WIDE_C:
        hw.update(ECP5_WIDE)
    return hw


SIM_DIVISOR_NOTE = "UART timing is simulated by the board test (tests/test_boards_cocotb.py)"


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
    seed: int | None = None
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
    model: dict
    path: Path
    origin: str                       # "export file", "checkpoint", "shipped export", ...


@dataclass
class RtlOut:
    accel_verilog: Path
    board_verilog: Path
    make_core: object                 # () -> boards.top.UARTAccelerator (what is synthesized)


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


# ---------------------------------------------------------------- checks before any stage

def _say(plan_or_opts, text: str) -> None:
    opts = plan_or_opts.options if isinstance(plan_or_opts, Plan) else plan_or_opts
    if not opts.quiet:
        print(text, flush=True)


def prepare(opts: BuildOptions) -> Plan:
    from .boards.platforms import resolve
    from .boards.uart import uart_divisor
    from .rtl import HwConfig

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
        from .checkpoint import load_checkpoint
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
    skip = default["skip"] if opts.zero_skip is None else opts.zero_skip
    hw = HwConfig(rows=1, cols=pes, fifo_depth=default["fifo_depth"],
                  rom_style=opts.rom_style or default["rom_style"],
                  dw_frames=(opts.depthwise or default["depthwise"]) == "frames").with_skip(skip)
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


# ---------------------------------------------------------------- stages

def stage_export(plan: Plan) -> ExportOut:
    """The integer model (--export, --checkpoint, or the shipped export for C).

    Without any of them (development only, with a warning) a random export."""
    from .quant.export_format import load_export

    opts = plan.options
    if opts.export is not None:
        model, origin = load_export(opts.export), f"export file {opts.export}"
    elif opts.checkpoint is not None:
        from .quant.export import export_model
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
                from .sim.stimuli import balanced_export
                model, origin = balanced_export(opts.C), "random export (balanced biases)"
            except ImportError:
                from .quant.random_export import random_export
                model, origin = random_export(opts.C), "random export"
    if model["C"] != opts.C:
        raise BuildError(f"the export is for C={model['C']} but --C {opts.C} was asked for")
    from .quant.export import write_export
    path = write_export(model, plan.out)
    return ExportOut(model, path, origin)


def stage_rtl(plan: Plan, exp: ExportOut) -> RtlOut:
    """Verilog of the accelerator and of the board design (UART + framing + accelerator)."""
    from .boards.top import UARTAccelerator, board_verilog
    from .rtl import SparkNetAccelerator, build_plan, generate_verilog

    build_plan(exp.model, plan.hw)                  # HwConfigError if the export does not fit

    def make_core():
        return UARTAccelerator(SparkNetAccelerator(exp.model, plan.hw), exp.model,
                               plan.divisor, plan.timeout_cycles)

    accel_v = plan.out / "sparknet_accel.v"
    accel_v.write_text(generate_verilog(exp.model, plan.hw))
    board_v = plan.out / "sparknet_board.v"
    board_v.write_text(board_verilog(make_core()))
    return RtlOut(accel_v, board_v, make_core)


def load_clips(plan: Plan, model: dict):
    """(int clips [N, 32, T], labels or None, names) from --inputs or the shipped clips."""
    opts = plan.options
    labels, names = None, None
    if opts.inputs is not None:
        try:
            x = np.load(opts.inputs, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise BuildError(f"{opts.inputs}: not a readable .npy file ({exc})") from None
        if isinstance(x, np.lib.npyio.NpzFile):
            raise BuildError(f"{opts.inputs}: expected a .npy array N x 32 x 101")
        if x.ndim == 2:
            x = x[None]
    elif shipped_files.test_clips().is_file():
        with np.load(shipped_files.test_clips(), allow_pickle=False) as z:
            x, labels, names = z["features"], z["labels"], [str(n) for n in z["names"]]
    else:
        rng = np.random.default_rng(0)
        x = rng.integers(model["input"]["lo"], model["input"]["hi"] + 1,
                         size=(4, model["features"], model["frames"]))
    if opts.clips is not None:
        x = x[:opts.clips]
        labels = labels[:opts.clips] if labels is not None else None
        names = names[:opts.clips] if names is not None else None
    from .sim import quantize_inputs
    q = quantize_inputs(model, x)
    if names is None:
        names = [f"clip{i}" for i in range(len(q))]
    return np.asarray(q, dtype=np.int64), labels, names


def stage_verify(plan: Plan, exp: ExportOut, rtl: RtlOut) -> VerifyOut:
    """cocotb simulation on real clips against the golden model (logits, class, gates)."""
    from .quant import golden
    from .sim import run_sim

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
    from .boards.platforms import BoardTop
    from .boards.synth import synthesize

    result = synthesize(BoardTop(rtl.make_core(), plan.spec), plan.spec, plan.out / "synth",
                        quiet=plan.options.quiet, config=plan.hw)
    src = Path(result.bitstream)
    bit = plan.out / f"sparknet_C{plan.options.C}_{plan.spec.name}{src.suffix}"
    shutil.copyfile(src, bit)
    return SynthOut(result, bit)


def export_accuracy(model: dict) -> float | None:
    """The accuracy the export's source records (QAT validation), if any."""
    src = model.get("source") or {}
    acc = src.get("accuracy")
    if isinstance(acc, dict):
        acc = acc.get("qat") or acc.get("accuracy")
    if acc is None:
        val = src.get("validation") or {}
        acc = (val.get("qat") or val.get("ptq") or {}).get("accuracy")
    return float(acc) if isinstance(acc, (int, float)) else None


def build_report(plan: Plan, exp: ExportOut, ver: VerifyOut, syn: SynthOut,
                 timings: dict) -> dict:
    sim = ver.sim
    n = max(1, sim["inferences"])
    res = syn.result
    fmax = res.fmax_mhz if res else None
    cycles = sim["cycles"] / n

    def used(kind):
        return res.used(kind) if res else None

    def total(kind):
        return res.total(kind) if res else None

    report = {
        "C": plan.options.C, "board": plan.spec.name, "device": None, "package": None,
        "export": exp.origin, "export_fingerprint": None,
        "pes": plan.hw.pes, "zero_skip": plan.hw.zero_skip, "skip_mode": plan.hw.skip_mode,
        "rom_style": plan.hw.rom_style, "depthwise": plan.hw.depthwise,
        "simulator": sim.get("simulator"), "seed": sim.get("seed"),
        "inferences": sim["inferences"], "mismatches": sim["mismatches"],
        "cycles": cycles, "cycles_total": sim["cycles"],
        "macs_dense": sim["macs_dense"] / n, "macs_issued": sim["macs_issued"] / n,
        "macs_gated": sim.get("macs_gated", 0) / n,
        "frames_skipped": sim["frames_skipped"] / n,
        "skip_ratio": 1 - sim["macs_issued"] / sim["macs_dense"] if sim["macs_dense"] else 0.0,
        "utilization": sim["utilization"],
        "layer_cycles": {k: v["cycles"] / n for k, v in sim.get("layers", {}).items()},
        "accuracy": ver.accuracy,
        "accuracy_clips": len(ver.labels) if ver.labels is not None else 0,
        "export_accuracy": export_accuracy(exp.model),
        "clock_mhz": plan.clock_mhz,
        "clock_source": (f"PLL from the {plan.spec.osc_mhz:g} MHz oscillator"
                         if plan.spec.pll else "oscillator"),
        "fmax_mhz": fmax,
        "latency_us": cycles / fmax if fmax else None,
        "latency_us_at_clock": cycles / plan.clock_mhz,
        "luts": used("luts"), "luts_total": total("luts"),
        "ffs": res.ffs if res else None, "ffs_total": total("ffs"),
        "dsps": used("dsps"), "dsps_total": total("dsps"),
        "brams": used("brams"), "brams_total": total("brams"),
        "sprams": used("sprams"), "sprams_total": total("sprams"),
        "ios": used("ios"), "ios_total": total("ios"),
        "baud": plan.options.baud, "uart_divisor": plan.divisor,
        "timings_s": timings,
        "files": {},
    }
    from .boards.protocol import export_fingerprint
    report["export_fingerprint"] = f"{export_fingerprint(exp.model):08x}"
    if res:
        report["device"], report["package"] = res.device, res.package
        report["synth_seconds"] = res.seconds
    else:
        platform = plan.spec.platform()
        report["device"], report["package"] = platform.device, platform.package
    return report


def _plots(plan: Plan, ver: VerifyOut, report: dict) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pdir = plan.out / "plots"
    pdir.mkdir(exist_ok=True)
    paths = []

    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.imshow(ver.gate_map, aspect="auto", cmap="Greys", interpolation="nearest")
    ax.set_xlabel("frame t")
    ax.set_ylabel("gate f")
    ax.set_title(f"gate map z[f, t] of {ver.names[0]} (C={plan.options.C}; "
                 f"{int(ver.gate_map.sum())} of {ver.gate_map.size} open)")
    fig.tight_layout()
    paths.append(pdir / "gate_map.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    layers = report["layer_cycles"]
    if layers:
        fig, ax = plt.subplots(figsize=(8, 3.5))
        ax.bar(range(len(layers)), list(layers.values()), color="tab:blue")
        ax.set_xticks(range(len(layers)), list(layers), rotation=45, ha="right")
        ax.set_ylabel("cycles per inference")
        ax.set_title(f"cycles per layer (C={plan.options.C}, {report['pes']} PEs, "
                     f"total {report['cycles']:,.0f})")
        fig.tight_layout()
        paths.append(pdir / "cycles_per_layer.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)

    kinds = [(k, report[k], report[f"{k}_total"]) for k in
             ("luts", "dsps", "brams", "sprams", "ios") if report.get(f"{k}_total")]
    if kinds:
        fig, ax = plt.subplots(figsize=(6, 3))
        pct = [100 * u / t for _, u, t in kinds]
        ax.barh([k for k, _, _ in kinds], pct,
                color=["tab:red" if p > 90 else "tab:green" for p in pct])
        for i, (_, u, t) in enumerate(kinds):
            ax.text(min(pct[i], 100) + 1, i, f"{u}/{t}", va="center")
        ax.set_xlim(0, 120)
        ax.set_xlabel("% of device")
        ax.set_title(f"resources on {report['device']} ({plan.spec.name})")
        fig.tight_layout()
        paths.append(pdir / "resources.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths


def _fmt(v, spec="", none="-"):
    return none if v is None else format(v, spec)


def format_markdown(r: dict) -> str:
    lines = [f"# SparkNet C={r['C']} on {r['board']} ({r['device']} {r['package']})", "",
             f"Export: {r['export']} (fingerprint {r['export_fingerprint']}); "
             f"{r['pes']} PEs, zero skipping {r['skip_mode']}, {r['depthwise'][:-1]}-parallel "
             f"depthwise, read-only tables {r['rom_style']}; "
             f"UART {r['baud']} baud.", "",
             "## Verification", "",
             f"{r['inferences']} clips simulated ({r['simulator']}, seed {r['seed']}): "
             f"**{r['mismatches']} mismatches** against the integer golden model "
             f"(logits, class, gate counts).",
             f"Accuracy on these clips: {_fmt(r['accuracy'], '.1%')} "
             f"({r['accuracy_clips']} labelled clips; the export's validation accuracy: "
             f"{_fmt(r['export_accuracy'], '.1%')}).", "",
             "## Performance (per inference)", "",
             "| figure | value |", "|---|---|",
             f"| cycles | {r['cycles']:,.0f} |",
             f"| dense MACs | {r['macs_dense']:,.0f} |",
             f"| issued MACs | {r['macs_issued']:,.0f} |",
             f"| skip ratio (MACs not issued) | {r['skip_ratio']:.1%} |",
             f"| frames skipped by the classifier | {r['frames_skipped']:,.1f} |",
             f"| PE utilization | {r['utilization']:.3f} |",
             f"| clock ({r['clock_source']}) | {r['clock_mhz']:g} MHz |",
             f"| post-route Fmax | {_fmt(r['fmax_mhz'], '.1f')} MHz |",
             f"| latency at Fmax | {_fmt(r['latency_us'], ',.1f')} us |",
             f"| latency at that clock | {r['latency_us_at_clock']:,.1f} us |", "",
             "## Resources", "", "| resource | used | total |", "|---|---|---|"]
    for kind in ("luts", "ffs", "dsps", "brams", "sprams", "ios"):
        if r.get(kind) is not None:
            lines.append(f"| {kind} | {r[kind]:,} | {_fmt(r.get(kind + '_total'), ',')} |")
    if r.get("luts") is None:
        lines.append("| (not synthesized: --no-synth) | | |")
    lines += ["", "## Stage timings", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in r["timings_s"].items()]
    lines += ["", "## Files", ""] + [f"- {k}: `{v}`" for k, v in r["files"].items()]
    lines += ["", "Latency = measured cycles per inference (hardware counters in the result "
              "record, simulated) / clock. Counters are per inference, averaged over the "
              "clips."]
    return "\n".join(lines) + "\n"


def stage_report(plan: Plan, exp: ExportOut, rtl: RtlOut, ver: VerifyOut, syn: SynthOut,
                 timings: dict) -> ReportOut:
    """report.json, report.md and plots (written last)."""
    report = build_report(plan, exp, ver, syn, timings)
    plots = _plots(plan, ver, report)
    files = {"export": exp.path, "accelerator_verilog": rtl.accel_verilog,
             "board_verilog": rtl.board_verilog, "sim_report": ver.path}
    if syn.bitstream:
        files["bitstream"] = syn.bitstream
        files["synth_dir"] = plan.out / "synth"
    for p in plots:
        files[p.stem] = p
    report["files"] = {k: str(Path(v).relative_to(plan.out)) for k, v in files.items()}
    md = plan.out / "report.md"
    tmp = md.with_name("report.md.tmp")
    tmp.write_text(format_markdown(report))
    tmp.replace(md)
    js = plan.out / "report.json"
    _write_json(js, report)                        # last: its presence marks a finished build
    return ReportOut(js, md, plots, report)


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
    syn = stage(4, "synth", stage_synth, plan, rtl)
    rep = stage(5, "report", stage_report, plan, exp, rtl, ver, syn, timings)
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


def pll_hint(plan, fmax_mhz: float | None, cycles: float) -> str | None:
    """Suggest a PLL clock when the design closes timing well above the oscillator."""
    from .boards.clocking import PLLError, pll_config

    if plan.spec.pll is not None or not fmax_mhz:
        return None
    try:
        # 10 % below the post-route Fmax: placed against a faster clock the design comes out
        # a few % slower or faster (iCEBreaker C=8: Fmax 19.1 MHz at 12 MHz; 18 MHz from the
        # PLL missed at 17.8, 17.25 MHz closed at 18.8)
        cfg = pll_config(plan.spec.family, plan.spec.osc_mhz, 0.9 * fmax_mhz)
    except PLLError:
        return None
    if cfg.f_out_mhz < 1.1 * plan.clock_mhz:
        return None
    return (f"the design closes timing at {fmax_mhz:.1f} MHz but the board runs it from its "
            f"{plan.clock_mhz:g} MHz oscillator ({cycles / plan.clock_mhz:,.0f} us per "
            f"inference); --pll-mhz {cfg.f_out_mhz:g} runs it from the PLL at "
            f"{cfg.f_out_mhz:g} MHz ({cycles / cfg.f_out_mhz:,.0f} us; if that build misses "
            f"timing, it says so and names a lower clock)")


# ---------------------------------------------------------------- bench

BENCH_TARGETS = ((4, "icebreaker"), (8, "icebreaker"), (16, "icebreaker"), (32, "ulx3s"))


def _params(C: int) -> int | None:
    try:
        from .complexity import model_info
        from .model import SparkNet
    except ImportError:
        return None
    return int(model_info(SparkNet(C))["params"])


def bench_one(C: int, board: str, out: Path, clips: int, simulator: str, synth: bool,
              refresh: bool, seed: int | None = 1) -> dict:
    """One row of the performance table: the build stages of `build` (sharing its code) plus
    a second simulation without zero skipping. A finished row is cached in out/row.json."""
    from .boards.protocol import export_fingerprint

    opts = BuildOptions(C=C, board=board, out=out, simulator=simulator, clips=clips,
                        synth=synth, force=True, seed=seed, quiet=True)
    plan = prepare(opts)
    row_path = out / "row.json"
    key = {"C": C, "board": plan.spec.name, "pes": plan.hw.pes, "skip_mode": plan.hw.skip_mode,
           "rom_style": plan.hw.rom_style, "depthwise": plan.hw.depthwise, "clips": clips,
           "simulator": simulator, "synth": synth, "baud": opts.baud,
           "design_code": _design_code_fingerprint()}
    if row_path.is_file() and not refresh:
        row = json.loads(row_path.read_text())
        shipped = shipped_files.int8_export(C)
        if row.get("key") == key and (not shipped.is_file() or row.get("export_fingerprint")
                                      == _fingerprint_file(shipped)):
            row["cached"] = True
            return row
    _fresh_out_dir(out)
    row = {"key": key, "C": C, "board": plan.spec.name, "params": _params(C), "error": None}
    timings = {}
    start = time.monotonic()
    exp = stage_export(plan)
    row["export"] = exp.origin
    row["export_fingerprint"] = f"{export_fingerprint(exp.model):08x}"
    rtl = stage_rtl(plan, exp)
    ver = stage_verify(plan, exp, rtl)
    timings["verify"] = time.monotonic() - start
    syn = SynthOut(None, None)
    misfit = {}
    if synth:
        from .boards.synth import DoesNotFit
        try:
            syn = stage_synth(plan, rtl)
        except DoesNotFit as exc:
            row["error"] = str(exc)
            misfit = exc.utilization(plan.spec.family)
        except UserError as exc:
            row["error"] = str(exc)
    rep = build_report(plan, exp, ver, syn, timings)
    row.update({k: rep[k] for k in ("device", "pes", "mismatches", "inferences", "cycles",
                                    "macs_dense", "macs_issued", "skip_ratio", "utilization",
                                    "frames_skipped", "luts", "luts_total", "ffs", "dsps",
                                    "dsps_total", "brams", "brams_total", "sprams", "fmax_mhz",
                                    "clock_mhz", "latency_us", "latency_us_at_clock",
                                    "accuracy")})
    for kind, u in misfit.items():             # what it would need, marked in the table
        row[kind], row[f"{kind}_total"] = u["used"], u["total"]
    row["fits"] = not misfit
    if synth and row["error"] and "misses the" in row["error"]:
        res = json.loads((out / "synth" / "synth_result.json").read_text())
        row["fmax_mhz"] = res.get("fmax_mhz")
    # the same clips without zero skipping: cycles only
    from .sim import run_sim
    noskip = run_sim(exp.model, ver.inputs, simulator=simulator,
                     hw_config=replace(plan.hw, zero_skip=False), seed=seed)
    n = max(1, noskip["inferences"])
    row["cycles_noskip"] = noskip["cycles"] / n
    row["mismatches"] += noskip["mismatches"]
    row["latency_us_noskip"] = row["cycles_noskip"] / row["fmax_mhz"] if row["fmax_mhz"] else None
    row["latency_us_noskip_at_clock"] = row["cycles_noskip"] / row["clock_mhz"]
    row["seconds"] = round(time.monotonic() - start, 1)
    _write_json(row_path, row)
    return row


def _design_code_fingerprint() -> str:
    """A hash of the generator and board sources: a cached bench row is only reused for the
    design code that produced it."""
    import hashlib

    from . import boards, rtl
    digest = hashlib.sha256()
    for pkg in (rtl, boards):
        for path in sorted(Path(pkg.__file__).parent.glob("*.py")):
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _fingerprint_file(path: Path) -> str:
    from .boards.protocol import export_fingerprint
    return f"{export_fingerprint(json.loads(path.read_text())):08x}"


def run_bench(targets, out_root: Path, clips: int = 4, simulator: str = "verilator",
              synth: bool = True, refresh: bool = False, quiet: bool = False) -> list[dict]:
    rows = []
    for C, board in targets:
        if not quiet:
            print(f"bench: C={C} on {board} ...", flush=True)
        start = time.monotonic()
        try:
            row = bench_one(C, board, Path(out_root) / f"C{C}_{board}", clips, simulator,
                            synth, refresh)
        except UserError as exc:
            row = {"C": C, "board": board, "error": str(exc)}
        if not quiet:
            status = "cached" if row.get("cached") else f"{time.monotonic() - start:.0f} s"
            print(f"       {status}" + (f"; {row['error']}" if row.get("error") else ""),
                  flush=True)
        rows.append(row)
    return rows


def format_bench(rows: list[dict]) -> str:
    def f(v, spec, none="-"):
        return none if v is None else format(v, spec)

    head = (f"{'C':>3} {'board':<11}{'params':>8}{'dense MACs':>12}{'PEs':>4}{'ZS':>4}"
            f"{'cycles':>9}{'util':>6}{'skip':>6}{'LUTs':>12}{'DSPs':>6}{'BRAM':>7}{'Fmax':>7}{'latency':>10}"
            f"{'no-skip':>10}")
    lines = [head, "-" * len(head)]
    notes = []
    for r in rows:
        if "cycles" not in r:
            lines.append(f"{r['C']:>3} {r['board']:<11} failed: {r['error']}")
            continue
        def res(kind):
            if r.get(kind) is None:
                return "-"
            over = "!" if r[kind] > (r.get(f"{kind}_total") or r[kind]) else ""
            return f"{r[kind]}/{r[f'{kind}_total']}{over}"
        luts, dsps, brams = res("luts"), res("dsps"), res("brams")
        lat = r.get("latency_us") or r.get("latency_us_at_clock")
        lat_ns = r.get("latency_us_noskip") or r.get("latency_us_noskip_at_clock")
        mark = "" if r.get("latency_us") else "*"
        zs = r.get("key", {}).get("skip_mode") or "-"
        lines.append(f"{r['C']:>3} {r['board']:<11}{f(r.get('params'), ','):>8}"
                     f"{r['macs_dense']:>12,.0f}{f(r.get('pes'), 'd'):>4}{zs:>4}"
                     f"{r['cycles']:>9,.0f}{r['utilization']:>6.2f}"
                     f"{r['skip_ratio']:>6.0%}{luts:>12}{dsps:>6}{brams:>7}"
                     f"{f(r.get('fmax_mhz'), '.1f'):>7}{f(lat, ',.0f') + mark:>10}"
                     f"{f(lat_ns, ',.0f') + mark:>10}")
        if r.get("error"):
            notes.append(f"C={r['C']} {r['board']}: {r['error']}")
        if r.get("mismatches"):
            notes.append(f"C={r['C']} {r['board']}: {r['mismatches']} MISMATCHES in simulation")
    lines.append("")
    lines.append("latency in us = cycles per inference / post-route Fmax; * = at the board "
                 "clock (no Fmax: not synthesized or did not fit); ! = more than the device "
                 "has (does not fit); ZS = zero skipping in the built design (all, 1x1 layers "
                 "only, or off); no-skip = the same clips with zero skipping off (same Fmax "
                 "assumed); skip = dense MACs not issued (zero activations gated or skipped)")
    return "\n".join(lines + notes)
