"""`info`: parameters and MACs of SparkNet at width C, per layer and in total."""
from __future__ import annotations

import json

from ..complexity import model_info
from ..model import SparkNet, UnsupportedWidth, check_width
from ..errors import UserError


def register(sub) -> None:
    p = sub.add_parser("info", help="parameter and MAC counts (thop convention)",
                       description="Parameter and MAC counts of SparkNet at width C, counted "
                                   "from the real PyTorch modules (thop convention).")
    p.add_argument("--C", type=int, default=8, help="network width: 4, 8, 16 or 32 (default 8)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args) -> int:
    try:
        check_width(args.C)
    except UnsupportedWidth as exc:
        raise UserError(str(exc)) from None
    info = model_info(SparkNet(args.C))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"SparkNet C={info['C']}: {info['params']:,} parameters, {info['macs']:,} MACs "
          f"per 1-s clip (32 x 101 MFCC)")
    print(f"{'layer':<28}{'kind':<13}{'shape':<18}{'params':>8}{'MACs':>10}")
    for layer in info["layers"]:
        print(f"{layer['name']:<28}{layer['kind']:<13}{layer['shape']:<18}"
              f"{layer['params']:>8,}{layer['macs']:>10,}")
    return 0
