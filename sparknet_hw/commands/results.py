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
    p.add_argument("--split", default="test", choices=["validation", "test"])
    p.add_argument("--C", type=int, nargs="*", default=list(WIDTHS))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def run(args) -> int:
    from ..complexity import model_info
    from ..evaluate import evaluate_checkpoint
    from ..model import SparkNet
    rows = []
    for C in args.C:
        info = model_info(SparkNet(C))
        row = {"C": C, "params": info["params"], "macs": info["macs"]}
        float_ckpt = shipped_checkpoint(C, "float")
        if float_ckpt.is_file():
            r = evaluate_checkpoint(float_ckpt, args.data, args.split)
            row.update(samples=r["samples"], accuracy=r["accuracy"],
                       accuracy_hard_gate=r["accuracy_hard_gate"], gate_sparsity=r["gate_sparsity"])
        qat_ckpt = shipped_checkpoint(C, "qat")
        if qat_ckpt.is_file():
            r = evaluate_checkpoint(qat_ckpt, args.data, args.split)
            row.update(accuracy_qat=r.get("accuracy_qat"), accuracy_int=r.get("accuracy_int"),
                       gate_sparsity_int=r.get("gate_sparsity"))
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
    samples = {r.get("samples") for r in rows} - {None}
    if samples:
        print(f"\n{args.split} split of {args.data}: {', '.join(map(str, sorted(samples)))} clips")
    return 0
