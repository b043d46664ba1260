"""`python -m sparknet_hw`: one subcommand per stage of the flow.

Each subcommand lives in sparknet_hw/commands/<name>.py with
`register(subparsers)` (adds its parser and sets `func`) and is listed below.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .errors import UserError

COMMANDS = [
    "info",
    "data",
    "train",
    "eval",
    "infer",
    "results",
    "quantize",
    "export",
    "sim",
    "run",
    "build",
    "bench",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sparknet_hw",
        description="SparkNet keyword spotting: model, fixed point, RTL, simulation, boards.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"sparknet_hw.commands.{name}").register(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
