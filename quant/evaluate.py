"""Float, QAT (Brevitas) and integer (golden model) accuracy of a "qat" checkpoint, side by side."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import golden
from .export import export_model
from .features import quantize_features
from .qat import evaluate
from .qat_model import load_qat_model


def evaluate_qat(payload: dict, features, labels, path="checkpoint") -> dict:
    """`accuracy` is the integer model's (what the hardware computes); `accuracy_qat` is the
    Brevitas model's (equal by construction), `accuracy_int` the golden model's, and
    `accuracy_float` the source float model's with its hard gate, when it can be found
    (see source_float_model)."""
    model = load_qat_model(payload, path)
    x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    result = evaluate(model, x, y)
    export = export_model(model)
    gold = golden.run_batch(export, quantize_features(x.numpy(), export))
    golden_classes = gold["classes"]
    result["frames_skipped"] = (float(gold["frames_off"].mean() / export.frames)
                                if len(y) else 0.0)
    result["accuracy_qat"] = result["accuracy"]
    result["accuracy_int"] = float((golden_classes == y.numpy()).mean()) if len(y) else 0.0
    result["int_matches_qat"] = bool(np.array_equal(golden_classes,
                                                     np.asarray(result["predictions"])))
    result["weight_bits"], result["act_bits"] = model.weight_bits, model.act_bits
    fmodel = source_float_model(payload, path)
    if fmodel is not None:
        fres = evaluate(fmodel, x, y)
        result["accuracy_float"] = fres["accuracy_hard_gate"]
        result["accuracy_float_soft_gate"] = fres["accuracy"]
    return result


def source_float_model(payload: dict, path="checkpoint"):
    """The float SparkNet a "qat" checkpoint was quantized from, or None: from the weights
    it carries (meta["float_state_dict"]), else (older checkpoints) from the file named by
    meta["float_checkpoint"]: an absolute path as is, a relative one next to the QAT
    checkpoint at `path` (then, as before, relative to the working directory)."""
    from sparknet_hw.checkpoint import CheckpointError, load_checkpoint
    from sparknet_hw.train import load_float_model
    meta = payload.get("meta") or {}
    state = meta.get("float_state_dict")
    if isinstance(state, dict) and state:
        try:
            return load_float_model({"C": payload["C"], "state_dict": state}, path)
        except CheckpointError:
            pass                      # damaged embedded weights: try the float file instead
    name = meta.get("float_checkpoint")
    if not name:
        return None
    name = Path(name)
    candidates = [name] if name.is_absolute() else [Path(path).parent / name, name]
    for candidate in candidates:
        if candidate.is_file():
            try:
                return load_float_model(load_checkpoint(candidate, kind="float", C=payload["C"]),
                                        candidate)
            except CheckpointError:
                continue
    return None
