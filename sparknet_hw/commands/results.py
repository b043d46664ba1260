"""`results`: the README's results table, evaluated now from the shipped checkpoints."""
from __future__ import annotations

import json
from pathlib import Path

from ..checkpoint import shipped_checkpoint
from ..model import WIDTHS


def register(sub) -> None:
    p = sub.add_parser("results", help="results table of the shipped checkpoints",
                       description="Evaluate every shipped checkpoint on a split and print the "
                                   "Markdown table the README shows.")
    p.add_argument("--data", type=Path, required=True,
                   help="the offline corpus ('data synth --seed 1948') or Speech Commands")
    p.add_argument("--split", default=None, choices=["validation", "test"],
                   help="default: test, or validation (the held-out speakers) for a folder "
                        "without split lists")
    p.add_argument("--C", type=int, nargs="*", default=list(WIDTHS))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def run(args) -> int:
    from ..complexity import model_info
    from ..evaluate import default_split, evaluate_checkpoint
    args.split = args.split or default_split(args.data)
    from ..model import SparkNet
    rows = []
    for C in args.C:
        info = model_info(SparkNet(C))
        row = {"C": C, "params": info["params"], "macs": info["macs"]}
        float_ckpt = shipped_checkpoint(C, "float")
        if float_ckpt.is_file():
            r = evaluate_checkpoint(float_ckpt, args.data, args.split)
            row.update(samples=r["samples"], accuracy=r["accuracy"],
                       accuracy_hard_gate=r["accuracy_hard_gate"], gate_sparsity=r["gate_sparsity"],
                       per_class_float=r["per_class"])
        qat_ckpt = shipped_checkpoint(C, "qat")
        if qat_ckpt.is_file():
            r = evaluate_checkpoint(qat_ckpt, args.data, args.split)
            row.update(accuracy_qat=r.get("accuracy_qat"), accuracy_int=r.get("accuracy_int"),
                       gate_sparsity_int=r.get("gate_sparsity"), per_class_int=r["per_class"],
                       frames_skipped_int=r.get("frames_skipped"))
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print("| C | params | MACs | float acc % | float hard-gate acc % | gate sparsity % "
          "| int8 QAT acc % | int8 golden acc % | int8 gate sparsity % |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['C']} | {r['params']:,} | {r['macs']:,} | {_pct(r.get('accuracy'))} "
              f"| {_pct(r.get('accuracy_hard_gate'))} | {_pct(r.get('gate_sparsity'))} "
              f"| {_pct(r.get('accuracy_qat'))} | {_pct(r.get('accuracy_int'))} "
              f"| {_pct(r.get('gate_sparsity_int'))} |")
    from ..data.labels import LABELS
    for kind, key in (("float (hard gate)", "per_class_float"), ("int8 golden", "per_class_int")):
        if not any(key in r for r in rows):
            continue
        print(f"\nper class, {kind}, %:\n")
        print("| C | " + " | ".join(LABELS) + " |")
        print("|---" * (len(LABELS) + 1) + "|")
        for r in rows:
            if key in r:
                print(f"| {r['C']} | " + " | ".join(_pct(r[key][k]) for k in LABELS) + " |")
    if any(r.get("frames_skipped_int") is not None for r in rows):
        print("\nint8 frames whose 32 gate bits are all zero (the classifier skips them), "
              "% of 101 per clip: " + ", ".join(f"C={r['C']} {_pct(r['frames_skipped_int'])}"
                                               for r in rows if r.get("frames_skipped_int") is not None))
    samples = {r.get("samples") for r in rows} - {None}
    if samples:
        print(f"\n{args.split} split of {args.data}: {', '.join(map(str, sorted(samples)))} clips")
    return 0
