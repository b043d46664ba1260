"""`sim`: generate the accelerator RTL, run the cocotb bench against the golden model and
report the hardware counters."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..quant.export_types import Export, as_export


def register(sub) -> None:
    p = sub.add_parser(
        "sim", help="simulate the generated accelerator (cocotb) against the golden model",
        description="Generate the accelerator RTL for an export, run it in Icarus or Verilator "
                    "through cocotb, compare every logit, class and gate count with the integer "
                    "golden model, and print a report built from the hardware counters.")
    p.add_argument("--C", type=int, default=None, help="network width (default 8, or the "
                   "export's)")
    p.add_argument("--export", type=Path, help="export file (default: the shipped "
                   "sparknet_hw/checkpoints/sparknet_C{N}_int8_export.json)")
    p.add_argument("--simulator", choices=["icarus", "verilator"], default="verilator")
    p.add_argument("--inputs", type=Path, help=".npy of N x 32 x 101 features (int8, or float "
                   "values quantized with the export's input frac); default: random clips")
    p.add_argument("--clips", type=int, default=None,
                   help="number of clips to run (default: all of --inputs, or 2 random clips)")
    p.add_argument("--waves", action="store_true", help="dump waveforms")
    skip = p.add_mutually_exclusive_group()
    skip.add_argument("--skip", choices=["all", "1x1", "off"], default="all",
                      help="zero skipping: all (default: 1x1 layers and the depthwise, see "
                           "--depthwise), 1x1 (pointwise, residual and head only) or off")
    skip.add_argument("--no-skip", dest="skip", action="store_const", const="off",
                      help="the same as --skip off (zeros are only gated)")
    p.add_argument("--depthwise", choices=["frames", "channels"], default="frames",
                   help="dataflow of the block 2..4 depthwise with --skip all: frames (default: "
                        "lanes are consecutive frames of a channel, every zero input skipped) "
                        "or channels (lanes are channels, only all-zero words skipped)")
    p.add_argument("--rom-style", choices=["auto", "block"], default="auto",
                   help="synthesis attribute of the read-only tables (no effect in simulation)")
    p.add_argument("--pes", type=int, default=8, help="PE lanes (rows*cols, power of 2, <= 16)")
    p.add_argument("--activation-ram", choices=["block", "spram"], default="block",
                   help="X and B in block RAM (default) or in single-port RAMs as on the "
                        "iCEBreaker (rtl/spram.py: the sequencer drains between passes, and "
                        "every record checks that no read met a write)")
    p.add_argument("--classifier-adders", type=int, default=12, choices=[1, 2, 3, 4, 6, 12],
                   metavar="N", help="classes the classifier adds per cycle: 12 (default) or "
                                     "1, 2, 3, 4, 6 (12 / N cycles per open gate; the "
                                     "iCEBreaker builds use 2)")
    p.add_argument("--accumulators", choices=["fabric", "dsp"], default="fabric",
                   help="each PE's sums in an adder in logic (default) or in two SB_MAC16 "
                        "accumulators taking turns (rtl/mac16.py; simulated with its model, "
                        "as `build --accumulators dsp` makes it on an iCE40 UltraPlus)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--seed", type=int, default=None, help="random seed for stimuli, gaps and "
                   "backpressure (default: SPARKNET_SIM_SEED or random; always printed)")
    p.set_defaults(func=run)


def load_model(args) -> Export:
    if args.export is not None:
        model = Export.load(args.export)
        if args.C is not None and model.C != args.C:
            raise UserError(f"--C {args.C} but the export {args.export} is for C={model.C}")
        return model
    if args.C is None:
        args.C = 8
    if args.C not in (4, 8, 16, 32):
        raise UserError(f"unsupported width C={args.C}: SparkNet is defined for C in [4, 8, 16, 32]")
    else:
        from ..shipped import int8_export
        shipped = int8_export(args.C)
        if shipped.is_file():
            model = Export.load(shipped)
        else:
            print(f"warning: no shipped export {shipped.name}; using a RANDOM export "
                  f"(quant.random_export, C={args.C}, int8, shifts and biases fitted on the "
                  f"shipped real clips) -- figures are not those of a trained network",
                  file=sys.stderr)
            from ..sim.stimuli import calibrated_export
            model = as_export(calibrated_export(args.C))
    return model


def load_inputs(args, model, rng) -> np.ndarray:
    """int clips N x 32 x T: --inputs (sparknet_hw.clips: shape, dtype and range checked, float
    MFCC quantized) or random ones."""
    if args.inputs is None:
        n = args.clips or 2
        lo, hi = model.input.lo, model.input.hi
        return rng.integers(lo, hi + 1, size=(n, model.features, model.frames))
    from ..clips import load_clip_batch
    return load_clip_batch(args.inputs, model, n=args.clips).features


def format_report(r: dict) -> str:
    lines = [f"SparkNet accelerator, C={r['C']} w{r['weight_bits']}a{r['act_bits']}, "
             f"{r['pes']} PEs, zero skipping {r['skip_mode']}, "
             f"{r['depthwise'][:-1]}-parallel depthwise, "
             f"{_memories(r)}"
             f"{r['simulator']}, {r['inferences']} inference(s), seed {r['seed']}"]
    lines.append(f"{'layer':<14}{'dense MACs':>12}{'real':>12}{'issued':>12}{'gated':>12}"
                 f"{'cycles':>10}{'zero in':>9}")
    for name, v in r["layers"].items():
        if name == "classifier":
            continue
        lines.append(f"{name:<14}{v['macs_dense']:>12,}{v['macs_real']:>12,}"
                     f"{v['macs_issued']:>12,}{v['macs_gated']:>12,}{v['cycles']:>10,}"
                     f"{v['zero_frac']:>9.1%}")
    lines.append(f"{'total (PEs)':<14}{r['macs_dense']:>12,}{r['macs_real']:>12,}"
                 f"{r['macs_issued']:>12,}{r['macs_gated']:>12,}{r['cycles']:>10,}")
    c = r["layers"].get("classifier")
    if c:
        lines.append(f"{'classifier':<14}{c['macs_dense']:>12,}{'':>12}{c['macs_issued']:>12,}"
                     f"{c['macs_gated']:>12,}{c['cycles']:>10,}{c['zero_frac']:>9.1%}"
                     f"  (no multiplier: issued/gated are column additions, 12 per gate bit)")
    lines.append("dense = thop convention of `info` (padding taps included); real = products with "
                 "non-padding operands = issued + gated; zero in = gated / real")
    lines.append(f"cycles per inference {r['cycles_per_inference']:,.0f}; frames skipped by the "
                 f"classifier {r['frames_skipped']}; utilization {r['utilization']:.3f} "
                 f"(issued MACs / ({r['pes']} PEs x cycles))")
    lines.append(f"mismatches against the golden model: {r['mismatches']} "
                 f"({r['inferences']} inferences)")
    for d in r.get("mismatch_details", [])[:10]:
        lines.append(f"  {d}")
    errors = r.get("counter_errors", [])
    lines.append(f"counters against the schedule model (sim/schedule.py), every layer's cycles, "
                 f"issued and gated MACs and frames skipped: "
                 f"{'exact' if not errors else f'{len(errors)} MISMATCHES'}; cycle budget "
                 f"{r.get('cycle_budget', 0):,}")
    for e in errors[:20]:
        lines.append(f"  counter check: {e}")
    if r.get("wall_s") is not None:
        lines.append(f"{r['simulator']} wall time {r['wall_s']:.1f} s (simulation and checks)")
    return "\n".join(lines)


def _memories(r: dict) -> str:
    """The non-default memory choices, for the report's first line."""
    parts = []
    if r.get("activation_ram", "block") != "block":
        parts.append(f"X and B in {r['activation_ram']}")
    if r.get("classifier_adders", 12) != 12:
        parts.append(f"{r['classifier_adders']}-adder classifier")
    if r.get("accumulators", "fabric") != "fabric":
        parts.append("accumulators in the DSPs")
    return "".join(f"{p}, " for p in parts)


def run(args) -> int:
    from ..rtl import HwConfig
    from ..sim.runner import SEED_ENV, run_sim
    import os
    model = load_model(args)
    seed = args.seed
    if seed is None and os.environ.get(SEED_ENV):
        seed = int(os.environ[SEED_ENV])
    if seed is None:
        seed = int(np.random.default_rng().integers(1 << 31))
    rng = np.random.default_rng(seed)
    x = load_inputs(args, model, rng)  # shape/range errors before anything is built
    if args.pes < 1:
        raise UserError("--pes must be positive")
    config = HwConfig(rows=1, cols=args.pes, rom_style=args.rom_style,
                      dw_frames=args.depthwise == "frames",
                      activation_ram=args.activation_ram,
                      classifier_adders=args.classifier_adders,
                      accumulators=args.accumulators).with_skip(args.skip)
    report = run_sim(model, x, args.simulator, config, seed=seed, waves=args.waves)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
        if args.waves:
            print(f"waves and logs: {report['run_dir']}")
    return 0 if report["mismatches"] == 0 and not report["counter_errors"] else 1
