"""`bench`: the performance table, one row per width and board.

A row runs the stages of `build` (pipeline.build, the same code) plus a second simulation
without zero skipping, and takes its figures from `build_report`. Finished rows are cached
in the row's directory and reused only for the same options, export and design code
(`_design_code_fingerprint`).
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from .. import shipped as shipped_files
from ..errors import UserError
from .build import (_fresh_out_dir, check_resources, prepare, stage_export, stage_rtl,
                    stage_synth, stage_verify)
from .common import BuildOptions, SynthOut, _write_json
from .report import build_report

BENCH_TARGETS = ((4, "icebreaker"), (8, "icebreaker"), (16, "icebreaker"), (32, "ulx3s"))
# sources under boards/ that are no part of the design (a change does not invalidate rows)
NOT_DESIGN_CODE = frozenset({"power.py"})


def _params(C: int) -> int | None:
    try:
        from ..complexity import model_info
        from ..model import SparkNet
    except ImportError:
        return None
    return int(model_info(SparkNet(C))["params"])


def bench_one(C: int, board: str, out: Path, clips: int, simulator: str, synth: bool,
              refresh: bool, seed: int | None = 1) -> dict:
    """One row of the performance table: the build stages of `build` (sharing its code) plus
    a second simulation without zero skipping. A finished row is cached in out/row.json."""
    from ..boards.protocol import export_fingerprint

    opts = BuildOptions(C=C, board=board, out=out, simulator=simulator, clips=clips,
                        synth=synth, force=True, seed=seed, quiet=True)
    plan = prepare(opts)
    row_path = out / "row.json"
    key = _row_key(plan, opts)
    cached = None if refresh else cached_row(row_path, key)
    if cached is not None:
        return cached
    _fresh_out_dir(out)
    row = {"key": key, "C": C, "board": plan.spec.name, "params": _params(C), "error": None}
    timings = {}
    start = time.monotonic()
    exp = stage_export(plan)
    row["export"] = exp.origin
    row["export_fingerprint"] = f"{export_fingerprint(exp.model):08x}"
    rtl = stage_rtl(plan, exp, check=False)     # a misfit is checked below, before synthesis
    ver = stage_verify(plan, exp, rtl)
    timings["verify"] = time.monotonic() - start
    syn = SynthOut(None, None)
    misfit = {}
    if synth:
        from ..boards.synth import DoesNotFit
        try:
            check_resources(plan, rtl.resources)   # a design that cannot fit is not synthesized
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
                                    "dsps_total", "brams", "brams_total", "sprams",
                                    "sprams_total", "fmax_mhz",
                                    "clock_mhz", "latency_us", "latency_us_at_clock",
                                    "accuracy", "chip_multipliers", "floor_design_cycles",
                                    "floor_chip_cycles", "cycles_over_design_floor",
                                    "cycles_over_chip_floor")})
    if rtl.resources is not None:
        row["estimate"] = {k: getattr(rtl.resources, k)
                           for k in ("dsps", "brams", "logic", "logic_low", "logic_high")}
    for kind, u in misfit.items():             # what it would need, marked in the table
        row[kind], row[f"{kind}_total"] = u["used"], u["total"]
    row["fits"] = not misfit
    if synth and row["error"] and "misses the" in row["error"]:
        res = json.loads((out / "synth" / "synth_result.json").read_text())
        row["fmax_mhz"] = res.get("fmax_mhz")
    # the same clips without zero skipping: cycles only
    from ..sim import run_sim
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


def _row_key(plan, opts: BuildOptions) -> dict:
    """Everything a bench row depends on besides the export (checked by its fingerprint)."""
    return {"C": opts.C, "board": plan.spec.name, "pes": plan.hw.pes,
            "skip_mode": plan.hw.skip_mode, "rom_style": plan.hw.rom_style,
            "depthwise": plan.hw.depthwise, "activation_ram": plan.hw.activation_ram,
            "classifier_adders": plan.hw.classifier_adders, "accumulators": plan.hw.accumulators,
            "clips": opts.clips, "simulator": opts.simulator,
            "synth": opts.synth, "baud": opts.baud, "design_code": _design_code_fingerprint()}


def cached_row(row_path: Path, key: dict) -> dict | None:
    """The row cached at row_path if it was made with this key and the shipped export."""
    if not row_path.is_file():
        return None
    row = json.loads(row_path.read_text())
    shipped = shipped_files.int8_export(key["C"])
    if row.get("key") != key or (shipped.is_file() and row.get("export_fingerprint")
                                 != _fingerprint_file(shipped)):
        return None
    row["cached"] = True
    return row


def predict_row(C: int, board: str, out: Path, clips: int, pes: int | None = None,
                skip: str | None = None) -> dict:
    """A bench row from the schedule model (sim/schedule.py) instead of simulation, and the
    resource estimate (boards/resources.py) instead of synthesis: seconds for any design,
    also one too big to simulate quickly or to place. Cycles, MACs and frames skipped are
    what the hardware would count on these clips (the model is exact); Fmax is unknown, so
    latency is at the board clock."""
    from ..sim.schedule import predict, predict_dense
    from .build import load_clips
    from .report import roofline_of

    opts = BuildOptions(C=C, board=board, out=out, clips=clips, synth=False, force=True,
                        quiet=True, pes=pes, zero_skip=skip)
    plan = prepare(opts)
    _fresh_out_dir(out)
    exp = stage_export(plan)
    rtl = stage_rtl(plan, exp, check=False)
    x = load_clips(plan, exp.model)[0]
    preds = [predict(exp.model, plan.hw, clip) for clip in x]
    n = len(preds)
    cycles = sum(p["cycles"] for p in preds) / n
    issued = sum(p["macs_issued"] for p in preds) / n
    dense = sum(predict_dense(exp.model, plan.hw, clip)["cycles"] for clip in x) / n
    device = plan.spec.device
    row = {"C": C, "board": plan.spec.name, "predicted": True, "inferences": n,
           "pes": plan.hw.pes, "skip_mode": plan.hw.skip_mode, "depthwise": plan.hw.depthwise,
           "cycles": cycles, "cycles_noskip": dense, "macs_issued": issued,
           "utilization": issued / (plan.hw.pes * cycles),
           "frames_skipped": sum(p["frames_skipped"] for p in preds),
           "clock_mhz": plan.clock_mhz, "latency_us_at_clock": cycles / plan.clock_mhz,
           "latency_us_noskip_at_clock": dense / plan.clock_mhz,
           **roofline_of(plan, exp.model, issued, cycles)}
    needs = rtl.resources
    if needs is not None and device is not None:
        row.update({"dsps": needs.dsps, "dsps_total": device.dsps, "brams": needs.brams,
                    "brams_total": device.brams, "sprams": needs.sprams,
                    "sprams_total": device.sprams, "logic": needs.logic,
                    "logic_low": needs.logic_low, "logic_high": needs.logic_high,
                    "logic_total": device.logic})
    return row


def format_predictions(rows: list[dict]) -> str:
    head = (f"{'C':>3} {'board':<11}{'PEs':>4}{'ZS':>5}{'cycles':>9}{'PE floor':>9}{'x':>6}"
            f"{'chip floor':>11}{'x':>6}{'util':>6}{'no-skip':>9}{'DSPs':>7}{'BRAM':>7}"
            f"{'SPRAM':>6}"
            f"{'logic (estimate)':>28}{'us @clk':>9}")
    lines = [head, "-" * len(head)]
    for r in rows:
        if "cycles" not in r:
            lines.append(f"{r['C']:>3} {r['board']:<11} failed: {r['error']}")
            continue

        def res(used, total):
            if used is None or total is None:
                return "-"
            return f"{used:,}/{total:,}" + ("!" if used > total else "")
        logic = "-"
        if r.get("logic") is not None:
            logic = (f"{r['logic']:,} ({r['logic_low']:,}-{r['logic_high']:,})/"
                     f"{r['logic_total']:,}" + ("!" if r["logic_low"] > r["logic_total"] else ""))
        lines.append(f"{r['C']:>3} {r['board']:<11}{r['pes']:>4}{r['skip_mode']:>5}"
                     f"{r['cycles']:>9,.0f}{r['floor_design_cycles']:>9,.0f}"
                     f"{r['cycles_over_design_floor']:>6.2f}"
                     f"{r['floor_chip_cycles'] or 0:>11,.0f}"
                     f"{r['cycles_over_chip_floor'] or 0:>6.1f}{r['utilization']:>6.2f}"
                     f"{r['cycles_noskip']:>9,.0f}{res(r.get('dsps'), r.get('dsps_total')):>7}"
                     f"{res(r.get('brams'), r.get('brams_total')):>7}"
                     f"{res(r.get('sprams'), r.get('sprams_total')) if r.get('sprams_total') else '-':>6}"
                     f" {logic:>27}"
                     f"{r['latency_us_at_clock']:>9,.0f}")
    lines.append("")
    lines.append("predicted, not simulated or synthesized: cycles from the schedule model "
                 "(sim/schedule.py, exact against the RTL), per inference on the shipped clips; "
                 "DSPs, block RAMs and SPRAMs exact, logic an estimated band "
                 "(boards/resources.py); "
                 "latency at the board clock; ! = more than the device has")
    return "\n".join(lines)


def energy_row(C: int, board: str, out: Path, clips: int, refresh: bool = False) -> dict:
    """The energy estimate of the board's default design for C (boards/power.py): cycles from
    the schedule model on `clips` shipped clips, activity from simulating the first one in
    Amaranth (cached), cells per block from the netlist, scaled to the placed total of a
    cached bench row of the same design when there is one (`bench` without --energy)."""
    from ..boards.power import estimate_design, figures_for
    from ..boards.protocol import export_fingerprint
    from .build import load_clips

    opts = BuildOptions(C=C, board=board, out=out / f"energy_C{C}_{board}", clips=clips,
                        synth=False, force=True, quiet=True)
    plan = prepare(opts)
    figures_for(plan.spec)                  # no figures for this board: error before any work
    _fresh_out_dir(plan.out)
    exp = stage_export(plan)
    rtl = stage_rtl(plan, exp, check=False)
    x = load_clips(plan, exp.model)[0]
    placed = _placed_cells(out / f"C{C}_{plan.spec.name}" / "row.json", plan,
                           f"{export_fingerprint(exp.model):08x}")
    start = time.monotonic()
    est = estimate_design(exp.model, plan.hw, plan.spec, x, rtl.make_core, placed,
                          plan.options.baud, refresh=refresh)
    row = {"C": C, "board": plan.spec.name, "placed_cells": placed, **est.to_dict(),
           "estimate_seconds": round(time.monotonic() - start, 1)}
    _write_json(plan.out / "energy.json", row)
    return row


def _placed_cells(row_path: Path, plan, fingerprint: str) -> int | None:
    """The placed logic cells of a cached bench row of exactly this design, if any."""
    if not row_path.is_file():
        return None
    row = json.loads(row_path.read_text())
    key = row.get("key") or {}
    same = (key.get("design_code") == _design_code_fingerprint()
            and row.get("export_fingerprint") == fingerprint
            and (key.get("pes"), key.get("skip_mode"), key.get("rom_style"), key.get("depthwise"),
                 key.get("activation_ram"), key.get("classifier_adders"),
                 key.get("accumulators", "fabric"))
            == (plan.hw.pes, plan.hw.skip_mode, plan.hw.rom_style, plan.hw.depthwise,
                plan.hw.activation_ram, plan.hw.classifier_adders, plan.hw.accumulators))
    return int(row["luts"]) if same and row.get("luts") and row.get("fits", True) else None


def _design_code_fingerprint() -> str:
    """A hash of the generator and board sources: a cached bench row is only reused for the
    design code that produced it."""
    import hashlib

    from .. import boards, rtl
    digest = hashlib.sha256()
    for pkg in (rtl, boards):
        for path in sorted(Path(pkg.__file__).parent.glob("*.py")):
            if path.name in NOT_DESIGN_CODE:
                continue
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _fingerprint_file(path: Path) -> str:
    from ..boards.protocol import export_fingerprint
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
            f"{'cycles':>9}{'PE floor':>9}{'x':>6}{'chip floor':>11}{'x':>6}{'util':>6}"
            f"{'skip':>6}{'LUTs':>12}{'DSPs':>6}{'BRAM':>7}{'SPRAM':>6}{'Fmax':>7}{'latency':>10}"
            f"{'no-skip':>10}")
    lines = [head, "-" * len(head)]
    notes = []
    chips = {}
    for r in rows:
        if "cycles" not in r:
            lines.append(f"{r['C']:>3} {r['board']:<11} failed: {r['error']}")
            continue
        def res(kind):
            total = r.get(f"{kind}_total")
            if total is None and kind == "sprams":     # rows cached before the column
                from ..boards.platforms import DEVICES
                total = getattr(DEVICES.get(r.get("device")), "sprams", None)
            if r.get(kind) is None or not total:
                return "-"
            return f"{r[kind]}/{total}" + ("!" if r[kind] > total else "")
        luts, dsps, brams, sprams = res("luts"), res("dsps"), res("brams"), res("sprams")
        lat = r.get("latency_us") or r.get("latency_us_at_clock")
        lat_ns = r.get("latency_us_noskip") or r.get("latency_us_noskip_at_clock")
        mark = "" if r.get("latency_us") else "*"
        zs = r.get("key", {}).get("skip_mode") or "-"
        if r.get("chip_multipliers"):
            chips[r.get("device") or r["board"]] = r["chip_multipliers"]
        lines.append(f"{r['C']:>3} {r['board']:<11}{f(r.get('params'), ','):>8}"
                     f"{r['macs_dense']:>12,.0f}{f(r.get('pes'), 'd'):>4}{zs:>4}"
                     f"{r['cycles']:>9,.0f}{f(r.get('floor_design_cycles'), ',.0f'):>9}"
                     f"{f(r.get('cycles_over_design_floor'), '.2f'):>6}"
                     f"{f(r.get('floor_chip_cycles'), ',.0f'):>11}"
                     f"{f(r.get('cycles_over_chip_floor'), '.1f'):>6}{r['utilization']:>6.2f}"
                     f"{r['skip_ratio']:>6.0%}{luts:>12}{dsps:>6}{brams:>7}{sprams:>6}"
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
    lines.append("roofline: PE floor = issued MACs / the design's PEs (its cycles at full "
                 "utilization), chip floor = issued MACs / the int8 products the chip's hard "
                 "multipliers make per cycle ("
                 + (", ".join(f"{d}: {n}" for d, n in chips.items()) or "see DEVICES")
                 + "; an iCE40 SB_MAC16 makes two in its 8x8 mode, an ECP5 MULT18X18D one); "
                 "x = measured cycles / floor")
    return "\n".join(lines + notes)
