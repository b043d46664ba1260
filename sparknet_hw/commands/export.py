"""`export`: fixed-point checkpoint -> integer model file (docs/integer-model.md), checked
against the Brevitas model; `--check` reads an export file back and runs the golden model."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..quant.export_types import Export


def register(sub) -> None:
    p = sub.add_parser("export", help="fixed-point checkpoint -> sparknet_export.json",
                       description="Write the integer SparkNet (weights, biases, shifts, ranges, "
                                   "accumulator widths) as DIR/sparknet_export.json and check "
                                   "that the integer golden model reproduces the Brevitas "
                                   "model's logits exactly. With --check, read an export file "
                                   "back, validate it and (with --features) classify clips "
                                   "with the golden model.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help="fixed-point checkpoint ('quantize')")
    src.add_argument("--check", type=Path, metavar="EXPORT",
                     help="an export file (or its folder) to validate and run")
    p.add_argument("--out", type=Path, help="output folder (with --checkpoint)")
    p.add_argument("--qonnx", action="store_true",
                   help="also write the Brevitas QONNX graph (sparknet_qonnx.onnx)")
    p.add_argument("--features", type=Path,
                   help=".npy/.npz features [N, 32, 101] or [32, 101]: float MFCC (quantized "
                        "with the export's input scale) or integers")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.check is not None:
        return _check(args)
    if args.out is None:
        raise UserError("--out DIR is needed with --checkpoint")
    import torch

    from ..checkpoint import load_checkpoint
    from ..clips import read_clips, to_model_input
    from ..quant.export import (export_model, export_qonnx, self_check_inputs, verify,
                                write_export)
    from ..quant.qat_model import load_qat_model

    payload = load_checkpoint(args.checkpoint, kind="qat")
    model = load_qat_model(payload, args.checkpoint)
    export = export_model(args.checkpoint)
    features = self_check_inputs(export)
    if args.features is not None:
        user = read_clips(args.features).features       # as stored (audio: its MFCC)
        to_model_input(user, export, args.features)     # shape / dtype / range errors first
        if np.issubdtype(user.dtype, np.floating):
            user = user.reshape(-1, export.features, export.frames)
            features = np.concatenate([features, user.astype(np.float32)])
    check = verify(model, export, features)
    if check["mismatches"]:
        raise UserError(f"golden model and Brevitas model disagree on {check['mismatches']} of "
                        f"{check['inputs']} inputs (first: #{check['first_mismatch']}); "
                        f"not writing an export")
    export.source["self_check"] = check
    path = write_export(export, args.out)
    summary = {"export": str(path), "C": export.C, "weight_bits": export.weight_bits,
               "act_bits": export.act_bits, "self_check": check,
               "acc_bits": _acc_bits(export)}
    if args.qonnx:
        from ..quant.export import run_qonnx
        onnx_path = export_qonnx(model, args.out)
        step = 2.0 ** export.classifier.out_frac
        got = np.rint(run_qonnx(onnx_path, features[:8]) * step).astype(np.int64)
        want = model.integer_logits(torch.from_numpy(features[:8])).numpy()
        summary["qonnx"] = {"path": str(onnx_path), "matches": bool(np.array_equal(got, want))}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"wrote {path}: C={export.C} W{export.weight_bits}A{export.act_bits}, "
              f"golden == Brevitas on {check['inputs']} inputs")
        print("accumulator bits: " + ", ".join(f"{k} {v}" for k, v in summary["acc_bits"].items()))
        if "qonnx" in summary:
            print(f"wrote {summary['qonnx']['path']} (qonnx execution "
                  f"{'matches' if summary['qonnx']['matches'] else 'DOES NOT match'})")
    return 0


def _acc_bits(export: Export) -> dict:
    out = {}
    for i, block in enumerate(export.blocks, start=1):
        for part in ("dw", "pw", "res"):
            layer = getattr(block, part)
            if layer is not None:
                out[f"block{i}.{part}"] = layer.acc_bits
    out["head"] = export.head.acc_bits
    out["classifier"] = export.classifier.acc_bits
    return out


def _check(args) -> int:
    from ..clips import load_clip_batch
    from ..quant import golden
    export = Export.load(args.check)
    result = {"export": str(args.check), "C": export.C, "valid": True}
    if args.features is not None:
        x = load_clip_batch(args.features, export).features
        out = golden.run_batch(export, x)
        labels = export.labels
        result["classes"] = [labels[k] for k in out["classes"].tolist()]
        result["logits"] = out["logits"].tolist()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.check}: valid sparknet-hw export, C={export['C']} "
              f"W{export['weight_bits']}A{export['act_bits']}")
        for i, label in enumerate(result.get("classes", [])):
            print(f"{i}: {label}")
    return 0
