"""The build report: report.json, report.md and the plots of a finished build, the figures
a bench row takes from it (`build_report`), and the PLL hint printed after a build.

Reads the stage outputs (pipeline.common); runs no stage itself.
"""
from __future__ import annotations

from pathlib import Path

from ..quant.export_types import Export
from .common import ExportOut, Plan, ReportOut, RtlOut, SynthOut, VerifyOut, _write_json
from .energy import ActivityJob, energy_lines, energy_of


def export_accuracy(model: Export) -> float | None:
    """The accuracy the export's source records (QAT validation), if any."""
    src = model.source or {}
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
        "activation_ram": plan.hw.activation_ram, "classifier_adders": plan.hw.classifier_adders,
        "accumulators": plan.hw.accumulators,
        "simulator": sim.get("simulator"), "seed": sim.get("seed"),
        "place_seed": plan.options.place_seed,
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
    report.update(roofline_of(plan, exp.model, report["macs_issued"], cycles))
    from ..boards.protocol import export_fingerprint
    report["export_fingerprint"] = f"{export_fingerprint(exp.model):08x}"
    if res:
        report["device"], report["package"] = res.device, res.package
        report["synth_seconds"] = res.seconds
    else:
        platform = plan.spec.platform()
        report["device"], report["package"] = platform.device, platform.package
    return report


def roofline_of(plan: Plan, model: Export, macs_issued: float, cycles: float) -> dict:
    """The cycle floors of a build (boards.resources.roofline): issued MACs / the design's PEs
    and / the products per cycle of the chip's hard multipliers (boards.platforms.DEVICES),
    and the measured cycles against each."""
    from ..boards.resources import roofline

    return roofline(macs_issued, cycles, plan.hw.pes, plan.spec.device,
                    model.weight_bits, model.act_bits)


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
             f"depthwise, read-only tables {r['rom_style']}, activation buffers in "
             f"{'single-port RAM (SB_SPRAM256KA)' if r.get('activation_ram') == 'spram' else 'block RAM'}, "
             f"classifier {r.get('classifier_adders', 12)} classes per cycle, "
             f"{'accumulators in the DSPs (2 SB_MAC16 per PE)' if r.get('accumulators') == 'dsp' else 'accumulators in logic'}; "
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
             f"| latency at that clock | {r['latency_us_at_clock']:,.1f} us |"]
    if r.get("floor_design_cycles"):
        lines.append(f"| floor: issued MACs / {r['pes']} PEs (this design at 100 % "
                     f"utilization) | {r['floor_design_cycles']:,.0f} cycles; measured "
                     f"{r['cycles_over_design_floor']:.2f}x |")
    if r.get("floor_chip_cycles"):
        lines.append(f"| floor: issued MACs / {r['chip_multipliers']} products per cycle "
                     f"({r['device']}: {r['chip_multiplier_note']}) | "
                     f"{r['floor_chip_cycles']:,.0f} cycles; measured "
                     f"{r['cycles_over_chip_floor']:.2f}x |")
    lines += ["", "## Resources", "", "| resource | used | total |", "|---|---|---|"]
    for kind in ("luts", "ffs", "dsps", "brams", "sprams", "ios"):
        if r.get(kind) is not None:
            lines.append(f"| {kind} | {r[kind]:,} | {_fmt(r.get(kind + '_total'), ',')} |")
    if r.get("luts") is None:
        lines.append("| (not synthesized: --no-synth) | | |")
    est = r.get("resources_estimate")
    if est:
        lines += ["", f"Before synthesis (boards/resources.py, {est['seconds']:.1f} s): "
                      f"{est['brams']} block RAMs and {est['dsps']} DSPs (exact), logic "
                      f"~{est['logic']:,} ({est['logic_low']:,}-{est['logic_high']:,}, "
                      f"estimated from {est['ffs']:,} flip-flop bits)."]
    if r.get("energy"):
        lines += ["", *energy_lines(r["energy"])]
    lines += ["", "## Stage timings", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in r["timings_s"].items()]
    lines += ["", "## Files", ""] + [f"- {k}: `{v}`" for k, v in r["files"].items()]
    lines += ["", "Latency = measured cycles per inference (hardware counters in the result "
              "record, simulated) / clock. Counters are per inference, averaged over the "
              "clips."]
    return "\n".join(lines) + "\n"


def stage_report(plan: Plan, exp: ExportOut, rtl: RtlOut, ver: VerifyOut, syn: SynthOut,
                 timings: dict, activity: ActivityJob | None = None) -> ReportOut:
    """report.json, report.md and plots (written last), with the energy estimate."""
    report = build_report(plan, exp, ver, syn, timings)
    if rtl.resources is not None:
        report["resources_estimate"] = rtl.resources.to_dict()
    energy = energy_of(plan, exp, rtl, ver, syn, activity)
    if energy is not None:
        report["energy"] = energy
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


def pll_hint(plan, fmax_mhz: float | None, cycles: float) -> str | None:
    """Suggest a PLL clock when the design closes timing well above the oscillator."""
    from ..boards.clocking import PLLError, pll_config

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
