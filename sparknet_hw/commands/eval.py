"""`eval`: accuracy, per-class accuracy, confusion matrix and gate sparsity on a split."""
from __future__ import annotations

import json
from pathlib import Path

from ..checkpoint import shipped_checkpoint


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint on the test split",
                       description="Accuracy, per-class accuracy, confusion matrix and gate "
                                   "sparsity of a float or fixed-point checkpoint.")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="checkpoint file (default: the shipped C=8 float checkpoint)")
    p.add_argument("--data", type=Path, required=True,
                   help="Speech Commands folder or offline corpus ('data synth')")
    p.add_argument("--split", default=None, choices=["train", "validation", "test"],
                   help="default: test, or validation (the held-out speakers) for a folder "
                        "without split lists")
    p.add_argument("--holdout", type=float, default=None,
                   help="percent of held-out speakers of a folder without split lists "
                        "(default: what the checkpoint was trained with)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..evaluate import evaluate_checkpoint, format_report
    path = args.checkpoint or shipped_checkpoint(8)
    result = evaluate_checkpoint(path, args.data, args.split, args.holdout)
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0
