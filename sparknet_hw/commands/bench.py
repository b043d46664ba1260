"""`bench`: the performance table for C = 4, 8, 16 (iCEBreaker UP5K) and 32 (ULX3S ECP5-25F)."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError


def register(sub) -> None:
    p = sub.add_parser(
        "bench", help="performance table: cycles, resources, Fmax, latency per width",
        description="For each width, build (export, Verilog, verification on real clips, "
                    "synthesis) and tabulate params, dense MACs, cycles, PE utilization, skip "
                    "ratio, LUTs, DSPs, BRAM, Fmax, latency, and latency with zero skipping "
                    "off. Finished rows are cached under --out; --refresh rebuilds them.")
    p.add_argument("--C", type=int, action="append", default=None,
                   help="width to run (repeatable; default 4, 8, 16, 32)")
    p.add_argument("--board", default=None,
                   help="board for every width (default: iCEBreaker for C <= 16, ULX3S for 32)")
    p.add_argument("--clips", type=int, default=4,
                   help="real clips simulated per width (default 4)")
    p.add_argument("--simulator", choices=["verilator", "icarus"], default="verilator")
    p.add_argument("--no-synth", action="store_true", help="simulation figures only")
    p.add_argument("--refresh", action="store_true", help="ignore cached rows")
    p.add_argument("--out", type=Path, default=Path("build") / "bench",
                   help="where the per-width builds go (default build/bench)")
    p.add_argument("--predict", action="store_true",
                   help="no simulation or synthesis: cycles from the schedule model (exact) and "
                        "resources from the pre-synthesis estimate, in seconds per design; "
                        "for designs too big to simulate or place quickly")
    p.add_argument("--pes", type=int, default=None,
                   help="with --predict: PE lanes of every design (default: the board's)")
    p.add_argument("--skip", choices=["all", "1x1", "off"], default=None,
                   help="with --predict: zero skipping of every design (default: the board's)")
    p.add_argument("--energy", action="store_true",
                   help="an energy ESTIMATE per inference instead of the table (iCEBreaker "
                        "only; default widths 4, 8, 16): per block cells, toggle rate and uW "
                        "from published iCE40UP5K figures and one simulated inference "
                        "(Amaranth, ~1-5 min per width the first time, cached); docs/power.md")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..boards.platforms import resolve
    from ..pipeline import BENCH_TARGETS, WIDTHS, format_bench, run_bench

    if args.energy and args.predict:
        raise UserError("choose one of --energy and --predict")
    default_widths = [c for c, b in BENCH_TARGETS if not args.energy or b == "icebreaker"]
    widths = args.C or default_widths
    for c in widths:
        if c not in WIDTHS:
            raise UserError(f"unsupported width C={c}: SparkNet is defined for C in "
                            f"{list(WIDTHS)}")
    if args.board is not None:
        resolve(args.board)                     # unknown board: one-line error up front
    default = dict(BENCH_TARGETS)
    targets = [(c, args.board or default[c]) for c in widths]
    if args.clips < 1:
        raise UserError("--clips must be at least 1")
    if (args.pes is not None or args.skip is not None) and not args.predict:
        raise UserError("--pes and --skip choose designs for --predict; a measured bench "
                        "row uses each board's default design (build --pes for one design)")
    if args.predict:
        return _predict(args, targets)
    if args.energy:
        return _energy(args, targets)
    rows = run_bench(targets, args.out, args.clips, args.simulator, not args.no_synth,
                     args.refresh, quiet=args.json)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(format_bench(rows))
    return 1 if any(r.get("mismatches") for r in rows) else 0


def _predict(args, targets) -> int:
    from ..pipeline.bench import format_predictions, predict_row

    rows = []
    for C, board in targets:
        out = args.out / f"predict_C{C}_{board}"
        try:
            rows.append(predict_row(C, board, out, args.clips, args.pes, args.skip))
        except UserError as exc:
            rows.append({"C": C, "board": board, "error": str(exc)})
    print(json.dumps(rows, indent=2) if args.json else format_predictions(rows))
    return 1 if any("error" in r for r in rows) else 0


def _energy(args, targets) -> int:
    from ..boards.power import format_energy
    from ..pipeline.bench import energy_row

    rows = []
    for C, board in targets:
        if not args.json:
            print(f"energy: C={C} on {board} ...", flush=True)
        try:
            rows.append(energy_row(C, board, args.out, args.clips, args.refresh))
        except UserError as exc:
            rows.append({"C": C, "board": board, "error": str(exc)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 1 if any("error" in r for r in rows) else 0
    for r in rows:
        if "error" in r:
            print(f"C={r['C']} {r['board']}: failed: {r['error']}\n")
            continue
        print(format_energy(r, title=f"C={r['C']} on {r['board']} ({r['part']}), "
                                     f"{r['clock_mhz']:g} MHz, {r['cycles']:,.0f} cycles = "
                                     f"{r['seconds'] * 1e3:,.2f} ms per inference: energy "
                                     f"ESTIMATE ({r['estimate_seconds']:.0f} s)"))
        print()
    return 1 if any("error" in r for r in rows) else 0
