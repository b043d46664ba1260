"""`run`: classify wav files on the board over its UART (features computed on the host)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import UserError
from ..quant.export_types import Export


def register(sub) -> None:
    p = sub.add_parser(
        "run", help="classify wav files on the FPGA board over its UART",
        description="Compute MFCC features of each clip on the host, quantize them with the "
                    "export's input format, send them to the board (framing protocol, "
                    "docs/protocol.md) and print its answers: class, logits, gate counts and "
                    "hardware counters, checked against the integer golden model.")
    p.add_argument("--port", required=True,
                   help="serial port of the board (iCEBreaker: /dev/ttyUSB1) or a pyserial URL")
    p.add_argument("--baud", type=int, default=115200, help="baud rate (default 115200, must "
                   "match the bitstream's)")
    p.add_argument("--export", type=Path, default=None,
                   help="export file the bitstream was built from (default: the shipped "
                        "sparknet_hw/checkpoints/sparknet_C{N}_int8_export.json for the "
                        "board's C)")
    p.add_argument("--timeout", type=float, default=5.0,
                   help="seconds to wait for an answer beyond the transfer time (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object per clip")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE.wav",
                   help=".wav clips (or .npy features [32, 101])")
    p.set_defaults(func=run)


def _load_model(path: Path | None, C: int) -> Export:
    if path is not None:
        return Export.load(path)
    from ..shipped import int8_export
    shipped = int8_export(C)
    if not shipped.is_file():
        raise UserError(f"the board runs C={C} but there is no shipped export {shipped.name}; "
                        f"pass the export the bitstream was built from with --export")
    return Export.load(shipped)


def run(args) -> int:
    import numpy as np

    from ..boards import protocol as P
    from ..boards.host import BoardErrorFrame, BoardLink
    from ..clips import load_features

    for path in args.files:
        if not path.is_file():
            raise UserError(f"{path}: no such file")
    if args.baud <= 0:
        raise UserError(f"--baud must be positive, got {args.baud}")
    with BoardLink(args.port, args.baud, args.timeout) as link:
        info = link.info()
        if info["version"] != P.PROTOCOL_VERSION:
            raise UserError(f"the board speaks protocol version {info['version']}, this host "
                            f"{P.PROTOCOL_VERSION}; rebuild the bitstream")
        model = _load_model(args.export, info["C"])
        if model.C != info["C"]:
            raise UserError(f"the export is for C={model.C} but the board runs C={info['C']}")
        matches = P.export_fingerprint(model) == info["fingerprint"]
        if not matches:
            print("warning: the export's fingerprint differs from the bitstream's; the golden "
                  "check is skipped (pass the export the bitstream was built from)",
                  file=sys.stderr)
        golden = None
        if matches:
            from ..quant import golden
        labels = list(model.labels)
        if not args.json:
            print(f"board: C={info['C']}, {info['record_words']} record words, protocol "
                  f"v{info['version']}, {args.port} at {args.baud} baud")
        failures = 0
        for path in args.files:
            x = load_features(path, model)
            try:
                rec = link.infer(model, x)
            except BoardErrorFrame as exc:
                failures += 1
                print(f"{path}\terror: {exc}", file=sys.stderr)
                continue
            check = None
            if golden is not None:
                g = golden.run(model, x)
                check = (rec["logits"] == g["logits"].tolist() and rec["class"] == g["class"]
                         and rec["gate_counts"] == g["gate_counts"].tolist())
                failures += not check
            label = labels[rec["class"]] if rec["class"] < len(labels) else str(rec["class"])
            if args.json:
                print(json.dumps({"file": str(path), "label": label, **rec,
                                  "golden_match": check}))
            else:
                verdict = {None: "", True: "\tgolden: match", False: "\tgolden: MISMATCH"}[check]
                active = int(np.count_nonzero(rec["gate_counts"]))
                print(f"{path}\t{label}\tclass {rec['class']}\tlogits {rec['logits']}\t"
                      f"{active}/32 gates active\t{rec['cycles']:,} cycles{verdict}")
    return 1 if failures else 0
