"""Float SparkNet training with the authors' recipe (shared/SPARKNET.md)."""
from __future__ import annotations

import time
from dataclasses import dataclass, asdict

import numpy as np
import torch
from .progress import progress_bar

from .checkpoint import save_checkpoint
from .model import SparkNet, check_width, sparknet_loss
from .schedule import poly_hold_decay


@dataclass
class Recipe:
    epochs: int = 200
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-3
    seed: int = 1948


def _as_tensor(x, dtype=torch.float32):
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x), dtype=dtype)


@torch.no_grad()
def evaluate_features(model: SparkNet, features, labels, batch_size: int = 512) -> dict:
    """Loss, accuracy (authors' inference gate), hard-gate accuracy and gate sparsity."""
    model.eval()
    features, labels = _as_tensor(features), _as_tensor(labels, torch.long)
    n = len(labels)
    loss_sum, correct, correct_hard, open_gates, gates = 0.0, 0, 0, 0, 0
    preds, preds_hard = [], []
    for i in range(0, n, batch_size):
        x, y = features[i:i + batch_size], labels[i:i + batch_size]
        logits, mu = model(x)
        loss, _ = sparknet_loss(logits, mu, y)
        loss_sum += float(loss) * len(y)
        preds.append(logits.argmax(1))
        correct += int((preds[-1] == y).sum())
        model.hard_gate = True
        try:
            hard_logits, _ = model(x)
        finally:
            model.hard_gate = False
        pred = hard_logits.argmax(1)
        preds_hard.append(pred)
        correct_hard += int((pred == y).sum())
        open_gates += int((mu > 0).sum())
        gates += mu.numel()
    return {"loss": loss_sum / max(n, 1), "accuracy": correct / max(n, 1),
            "accuracy_hard_gate": correct_hard / max(n, 1),
            "gate_sparsity": 1.0 - open_gates / max(gates, 1), "samples": n,
            "predictions": torch.cat(preds).tolist() if preds else [],
            "predictions_hard": torch.cat(preds_hard).tolist() if preds_hard else []}


def train(C: int, data_root, out, recipe: Recipe = Recipe(), progress: bool = True,
          log=print) -> dict:
    """Train SparkNet-C on the corpus at data_root; keep the checkpoint with the best
    validation loss at `out`. Returns the training summary."""
    from .data.dataset import FeatureDataset, augment_batch
    from .features import mfcc_torch

    check_width(C)
    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    t0 = time.time()
    train_set = FeatureDataset(data_root, "train", augment=True, seed=recipe.seed)
    val_set = FeatureDataset(data_root, "validation", augment=False, seed=recipe.seed)
    waves = _as_tensor(train_set.waveforms)
    labels = _as_tensor(train_set.labels, torch.long)
    val_x, val_y = _as_tensor(val_set.features), _as_tensor(val_set.labels, torch.long)
    log(f"data: {len(labels)} training clips, {len(val_y)} validation clips "
        f"({time.time() - t0:.1f} s)")

    model = SparkNet(C)
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                          weight_decay=recipe.weight_decay)
    steps_per_epoch = (len(labels) + recipe.batch_size - 1) // recipe.batch_size
    total_steps = steps_per_epoch * recipe.epochs
    best = {"loss": float("inf")}
    history = []
    step = 0
    bar = progress_bar(total=total_steps, desc=f"train C={C}", unit="batch",
                       disable=not progress)
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        order = torch.randperm(len(labels), generator=gen)
        ce_sum, seen = 0.0, 0
        for i in range(0, len(order), recipe.batch_size):
            idx = order[i:i + recipe.batch_size]
            x = mfcc_torch(augment_batch(waves[idx], gen))
            for group in opt.param_groups:
                group["lr"] = poly_hold_decay(step, total_steps, recipe.lr)
            logits, mu = model(x)
            loss, ce = sparknet_loss(logits, mu, labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            ce_sum += float(ce.detach()) * len(idx)
            seen += len(idx)
            step += 1
            bar.update(1)
        val = evaluate_features(model, val_x, val_y)
        val.pop("predictions"), val.pop("predictions_hard")
        row = {"epoch": epoch, "train_ce": ce_sum / seen, **val}
        history.append(row)
        bar.set_postfix(val_acc=f"{val['accuracy']:.3f}", sparsity=f"{val['gate_sparsity']:.2f}")
        if val["loss"] < best["loss"]:
            best = row
            save_checkpoint(out, "float", C, model.state_dict(),
                            recipe=asdict(recipe), epoch=epoch, data=str(data_root),
                            validation=val)
    bar.close()
    summary = {"C": C, "checkpoint": str(out), "best": best, "epochs": recipe.epochs,
               "seconds": round(time.time() - t0, 1)}
    log(f"best epoch {best['epoch']}: validation accuracy {best['accuracy']:.4f}, "
        f"hard-gate accuracy {best['accuracy_hard_gate']:.4f}, gate sparsity "
        f"{best['gate_sparsity']:.3f}; saved {out} ({summary['seconds']} s)")
    return summary


def load_float_model(payload: dict, path="checkpoint") -> SparkNet:
    from .checkpoint import CheckpointError
    model = SparkNet(payload["C"])
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, TypeError) as exc:
        first = str(exc).splitlines()[0][:100]
        raise CheckpointError(f"{path}: weights do not fit SparkNet C={payload['C']} ({first}); "
                              f"re-create the checkpoint with 'train'") from None
    return model.eval()
