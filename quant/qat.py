"""Quantization-aware fine-tuning of a float SparkNet into the fixed-point QuantSparkNet.

quantize(float checkpoint or SparkNet, train data, validation data, weight_bits, act_bits,
epochs) folds BN, calibrates the activation scales, then fine-tunes: first with the float
recipe's noisy gate, in the final phase with the hard gate z = [h > 0] trained through a
straight-through estimator (forward hard, backward through clamp(tanh(h) + 0.5, 0, 1)).
Every epoch is validated on the integer-exact eval model (hard gate); the best is kept and
saved as a "qat" checkpoint.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from sparknet_hw.progress import progress_bar

from sparknet_hw.checkpoint import load_checkpoint, save_checkpoint
from sparknet_hw.model import SparkNet, sparknet_loss

from .qat_model import DEFAULT_CALIB_STEPS, QuantSparkNet, check_bits, choose_input_shift


@dataclass
class QATRecipe:
    epochs: int = 6
    batch_size: int = 128
    optimizer: str = "adam"        # "adam" or "sgd"
    lr: float = 5e-4               # cosine-decayed to lr_final over all steps
    lr_final: float = 1e-6
    momentum: float = 0.9          # SGD only
    weight_decay: float = 0.0
    ste_epochs: int | None = None  # final hard-gate (STE) phase; default: half, at least 1
    calib_steps: int = DEFAULT_CALIB_STEPS
    augment: bool = True           # waveform augmentation when the training set has waveforms
    balance: bool = False          # every class drawn equally often (as the float recipe did)
    unknown_weight: float = 1.0    # ... `_unknown_` this many times as often (as the float recipe)
    unknown_by_word: bool = False  # ... each of its words equally often (as the float recipe)
    source_weight: dict = field(default_factory=dict)  # ... folders weighed (as the float recipe)
    sparsity_weight: float = 1.0   # weight of the sparsity loss (as the float recipe)
    seed: int = 1948

    def ste_start(self) -> int:
        """First epoch (1-based) trained with the STE hard gate."""
        n = self.ste_epochs if self.ste_epochs is not None else max(1, self.epochs // 2)
        return self.epochs - min(max(n, 0), self.epochs) + 1


def _xy(data):
    """(features float32 [N, 32, 101], labels int64 [N]) from a dataset or a pair."""
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
    else:
        x, y = data.features, data.labels
    x = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    y = y if isinstance(y, torch.Tensor) else torch.as_tensor(np.asarray(y))
    return x.float(), y.long()


FLOAT_META_KEYS = ("recipe", "sources", "validation_speakers", "commit", "epoch", "data")


def _float_model(source) -> tuple[SparkNet, str | None, dict]:
    """The float model, its path and the training record (recipe, data, split, commit)."""
    if isinstance(source, SparkNet):
        return source.eval(), None, {}
    from sparknet_hw.train import load_float_model
    payload = load_checkpoint(source, kind="float")
    meta = payload.get("meta") or {}
    record = {k: meta[k] for k in FLOAT_META_KEYS if k in meta}
    return load_float_model(payload, source), str(source), record


@torch.no_grad()
def evaluate(model, x, y, batch_size: int = 512) -> dict:
    """Loss, accuracy and gate sparsity of the eval-mode model (QuantSparkNet: the hard-gate
    integer model; SparkNet: its own eval gate, plus hard-gate accuracy)."""
    was_training = model.training
    model.eval()
    loss_sum, correct, correct_hard, open_gates, gates = 0.0, 0, 0, 0, 0
    preds = []
    try:
        for i in range(0, len(y), batch_size):
            xb, yb = x[i:i + batch_size], y[i:i + batch_size]
            logits, mu = model(xb)
            loss, _ = sparknet_loss(logits, mu, yb, gate_noise=model.gate_noise)
            loss_sum += float(loss) * len(yb)
            pred = logits.argmax(1)
            preds.append(pred)
            correct += int((pred == yb).sum())
            open_gates += int((mu > 0).sum())
            gates += mu.numel()
            if isinstance(model, SparkNet):
                model.hard_gate = True
                try:
                    correct_hard += int((model(xb)[0].argmax(1) == yb).sum())
                finally:
                    model.hard_gate = False
    finally:
        model.train(was_training)
    n = max(len(y), 1)
    out = {"loss": loss_sum / n, "accuracy": correct / n,
           "gate_sparsity": 1.0 - open_gates / max(gates, 1), "samples": len(y),
           "predictions": torch.cat(preds).tolist() if preds else []}
    if isinstance(model, SparkNet):
        out["accuracy_hard_gate"] = correct_hard / n
    return out


def _train_batches(train_data, x, y, recipe: QATRecipe, gen):
    """Yield (features, labels) minibatches of one epoch, augmented from waveforms if the
    data set provides them (the float trainer's augmentation, sparknet_hw.data.dataset)."""
    wave_batch = None
    if recipe.augment and (hasattr(train_data, "wave_batch") or hasattr(train_data, "waveforms")):
        try:
            from sparknet_hw.data.dataset import augment_batch
            from sparknet_hw.features import mfcc_torch
            wave_batch = getattr(train_data, "wave_batch", None) or (
                lambda idx: train_data.waveforms[idx])
        except ImportError:
            wave_batch = None
    if recipe.balance:
        from sparknet_hw.data.mixture import class_balanced_order
        within = None
        if hasattr(train_data, "examples"):
            from sparknet_hw.data.mixture import within_class_factors
            within = within_class_factors(train_data, recipe.unknown_by_word,
                                          recipe.source_weight)
        order = class_balanced_order(y, gen, recipe.unknown_weight, within)
    else:
        order = torch.randperm(len(y), generator=gen)
    for i in range(0, len(order), recipe.batch_size):
        idx = order[i:i + recipe.batch_size]
        if wave_batch is not None:
            with torch.no_grad():
                xb = mfcc_torch(augment_batch(wave_batch(idx).float(), gen))
            yield xb, y[idx]
        else:
            yield x[idx], y[idx]


def quantize(float_source, train_data, val_data, weight_bits: int = 8, act_bits: int = 8,
             epochs: int | None = None, out=None, recipe: QATRecipe | None = None,
             progress: bool = True, log=print,
             input_bits: int | None = None) -> tuple[QuantSparkNet, dict]:
    """QAT-fine-tune a float SparkNet (checkpoint path or model) at the given bit widths.

    train_data / val_data: FeatureDataset-like objects (.features, .labels, optionally
    .waveforms) or (features [N, 32, 101], labels [N]) pairs. Saves the best epoch (integer
    validation accuracy) as a "qat" checkpoint at `out` if given. Returns (model, summary).
    input_bits: width of the quantized MFCC input (default act_bits).
    """
    check_bits(weight_bits, act_bits, input_bits)
    recipe = copy.copy(recipe) if recipe is not None else QATRecipe()
    if epochs is not None:
        recipe.epochs = epochs
    if recipe.epochs < 1:
        raise ValueError("QAT needs at least one epoch")
    t0 = time.time()
    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    from sparknet_hw.train import git_revision
    commit = git_revision()
    fmodel, float_path, float_meta = _float_model(float_source)
    # the source float weights travel inside the QAT checkpoint (a few thousand parameters),
    # so that 'eval' can report the float accuracy wherever the checkpoint is copied to
    float_state = {k: v.detach().cpu().clone() for k, v in fmodel.state_dict().items()}
    x, y = _xy(train_data)
    vx, vy = _xy(val_data)

    float_val = evaluate(fmodel, vx, vy)
    shift = choose_input_shift(x)
    model = QuantSparkNet.from_float(fmodel, weight_bits, act_bits, calib_steps=recipe.calib_steps,
                                     input_bits=input_bits, input_shift=shift)
    model.gate_noise = fmodel.gate_noise
    log(f"per-feature input gain (log2): {shift.tolist()}; training gate noise "
        f"{model.gate_noise:g} (the float model's)")
    calib = [x[torch.randperm(len(y), generator=gen)[:recipe.batch_size]]
             for _ in range(min(recipe.calib_steps, max(1, math.ceil(len(y) / recipe.batch_size))))]
    model.calibrate(calib)
    ptq_val = evaluate(model, vx, vy)
    log(f"float (hard gate) validation accuracy {float_val['accuracy_hard_gate']:.4f}, "
        f"after calibration (PTQ, W{weight_bits}A{act_bits}) {ptq_val['accuracy']:.4f}")

    # the learned activation scales (log2 domain) get no weight decay (it would pull every
    # scale towards 1) and, with SGD, a smaller step: their gradient sums over whole tensors
    # The learned activation scales (log2 domain) get no weight decay, which would pull every
    # scale towards 1. With BN folded, gradient magnitudes differ by ~1e4 between layers
    # (pointwise weights ~0.1 with gradients ~1e3, depthwise weights ~5), so Adam, which is
    # invariant to that, is the default; plain SGD diverges at lr >= 1e-5 here.
    named = list(model.named_parameters())
    scales = [p for n, p in named if "scaling_impl" in n]
    others = [p for n, p in named if "scaling_impl" not in n]
    groups = [{"params": others, "weight_decay": recipe.weight_decay},
              {"params": scales, "weight_decay": 0.0}]
    if recipe.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum)
    elif recipe.optimizer == "adam":
        opt = torch.optim.Adam(groups, lr=recipe.lr)
    else:
        raise ValueError(f"unknown optimizer {recipe.optimizer!r} (adam or sgd)")
    steps_per_epoch = math.ceil(len(y) / recipe.batch_size)
    total = steps_per_epoch * recipe.epochs
    ste_start = recipe.ste_start()

    best = {"epoch": 0, **_strip(ptq_val)}
    best_state = copy.deepcopy(model.state_dict())
    history = [{"epoch": 0, "phase": "ptq", **_strip(ptq_val)}]
    bar = progress_bar(total=total, desc=f"QAT C={model.C} W{weight_bits}A{act_bits}",
                       unit="batch", disable=not progress)
    step = 0
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        model.gate_mode = "ste" if epoch >= ste_start else "noisy"
        ce_sum, seen = 0.0, 0
        for xb, yb in _train_batches(train_data, x, y, recipe, gen):
            lr = recipe.lr_final + 0.5 * (recipe.lr - recipe.lr_final) * (
                1 + math.cos(math.pi * step / max(total, 1)))
            for group in opt.param_groups:
                group["lr"] = lr
            logits, mu = model(xb)
            loss, ce = sparknet_loss(logits, mu, yb, gate_noise=model.gate_noise,
                                     sparse_weight=recipe.sparsity_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            ce_sum += float(ce.detach()) * len(yb)
            seen += len(yb)
            step += 1
            bar.update(1)
        val = _strip(evaluate(model, vx, vy))
        row = {"epoch": epoch, "phase": model.gate_mode, "train_ce": ce_sum / max(seen, 1), **val}
        history.append(row)
        bar.set_postfix(val_acc=f"{val['accuracy']:.3f}", sparsity=f"{val['gate_sparsity']:.2f}")
        if (val["accuracy"], -val["loss"]) > (best["accuracy"], -best["loss"]):
            best = {"epoch": epoch, **val}
            best_state = copy.deepcopy(model.state_dict())
    bar.close()
    model.load_state_dict(best_state)
    model.eval()
    summary = {"C": model.C, "weight_bits": weight_bits, "act_bits": act_bits,
               "input_bits": model.input_bits,
               "data": list(getattr(train_data, "roots", [])) or None, "commit": commit,
               "float_checkpoint": float_path, "float_meta": float_meta,
               "best_epoch": best["epoch"],
               "validation": {"float": _strip(float_val), "ptq": _strip(ptq_val),
                              "qat": {k: v for k, v in best.items() if k != "epoch"}},
               "history": history, "recipe": asdict(recipe),
               "seconds": round(time.time() - t0, 1)}
    log(f"best epoch {best['epoch']}: validation accuracy float {float_val['accuracy_hard_gate']:.4f} "
        f"(hard gate), QAT/integer {best['accuracy']:.4f}, gate sparsity "
        f"{best['gate_sparsity']:.3f}")
    if out is not None:
        save_qat_checkpoint(out, model, summary, float_state_dict=float_state)
        summary["checkpoint"] = str(out)
        log(f"saved {out} ({summary['seconds']} s)")
    return model, summary


def _strip(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in ("predictions", "predictions_hard")}


def save_qat_checkpoint(path, model: QuantSparkNet, summary: dict | None = None,
                        float_state_dict: dict | None = None) -> Path:
    """Save a "qat" checkpoint. float_state_dict: the source float SparkNet's weights, kept in
    meta["float_state_dict"] (CPU tensors) so that the float model needs no other file;
    meta["float_checkpoint"] is only the float file's base name (machine paths do not travel)."""
    summary = summary or {}
    meta = {"weight_bits": model.weight_bits, "act_bits": model.act_bits,
            "model_config": model.config()}
    for key in ("float_checkpoint", "float_meta", "best_epoch", "validation", "history", "recipe",
                "data", "commit"):
        if key in summary:
            meta[key] = summary[key]
    if meta.get("float_checkpoint"):
        meta["float_checkpoint"] = Path(meta["float_checkpoint"]).name
    if float_state_dict is not None:
        meta["float_state_dict"] = {k: v.detach().cpu().clone()
                                    for k, v in float_state_dict.items()}
    return save_checkpoint(path, "qat", model.C, model.state_dict(), **meta)
