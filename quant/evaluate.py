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
    `accuracy_float` the source float model's with its hard gate, when that checkpoint is
    still where the QAT checkpoint says it was."""
    model = load_qat_model(payload, path)
    x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    result = evaluate(model, x, y)
    export = export_model(model)
    golden_classes = golden.run_batch(export, quantize_features(x.numpy(), export))["classes"]
    result["accuracy_qat"] = result["accuracy"]
    result["accuracy_int"] = float((golden_classes == y.numpy()).mean()) if len(y) else 0.0
    result["int_matches_qat"] = bool(np.array_equal(golden_classes,
                                                     np.asarray(result["predictions"])))
    result["weight_bits"], result["act_bits"] = model.weight_bits, model.act_bits
    float_path = (payload.get("meta") or {}).get("float_checkpoint")
    if float_path and Path(float_path).is_file():
        from sparknet_hw.checkpoint import CheckpointError, load_checkpoint
        from sparknet_hw.train import load_float_model
        try:
            fmodel = load_float_model(load_checkpoint(float_path, kind="float"), float_path)
        except CheckpointError:
            fmodel = None
        if fmodel is not None:
            fres = evaluate(fmodel, x, y)
            result["accuracy_float"] = fres["accuracy_hard_gate"]
            result["accuracy_float_soft_gate"] = fres["accuracy"]
    return result
