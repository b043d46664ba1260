"""Float SparkNet training with the authors' recipe (shared/SPARKNET.md)."""
from __future__ import annotations

import time
from dataclasses import dataclass, asdict, field

import numpy as np
import torch
from .progress import progress_bar

from .checkpoint import save_checkpoint
from .data.speech_commands import HOLDOUT_PERCENT
from .model import CE_WEIGHT, GATE_NOISE_STD, SparkNet, check_width, sparknet_loss
from .schedule import poly_hold_decay


@dataclass
class Recipe:
    """Training settings. The defaults are the authors' released recipe (SPARKNET.md);
    `Recipe.real_speech()` is the one the shipped checkpoints use (docs/training.md)."""
    epochs: int = 200
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-3
    seed: int = 1948
    holdout: float = HOLDOUT_PERCENT  # % of speakers held out of a folder without split lists
    folder_holdout: dict = field(default_factory=dict)  # {folder base name: %}, overrides it
    p_background: float | None = None  # real background noise; None: the authors' (C=32 only)
    snr_db: tuple[float, float] = (0.0, 20.0)
    speed: float = 0.0               # speed perturbation 1 +- speed ...
    p_speed: float = 0.0             # ... on this fraction of clips
    spec_augment: bool = False       # SpecAugment time/coefficient masks on the MFCC
    balance: bool = False            # draw every class equally often
    unknown_weight: float = 1.0      # ... and `_unknown_` this many times as often
    unknown_by_word: bool = False    # ... each of its words equally often, per folder
    source_weight: dict = field(default_factory=dict)  # {folder base name: W}, within a class
    p_zero_silence: float = 0.1      # `_silence_` clips replaced by digital silence
    p_reversed: float = 0.0          # keyword clips played backwards, labelled `_unknown_`
    label_smoothing: float = 0.0     # training targets smoothed (validation is not)
    speaker_fraction: float = 1.0    # real training speakers kept (the learning curve)
    ema: float = 0.0                 # decay of the weight average kept and saved; 0: none
    teacher: str | None = None       # float checkpoint of a wider model to distil from
    distill_weight: float = 0.5      # share of the distillation term in the loss
    distill_temperature: float = 4.0
    precondition: bool = False       # first layer trained as if the MFCC had unit RMS
    gate_noise: float = GATE_NOISE_STD  # std of the training gate's Gaussian noise
    sparsity_weight: float = 1.0     # weight of the sparsity term (the authors': 1, CE 100)
    optimizer: str = "sgd"           # "sgd" (the authors') or "adamw"

    @classmethod
    def real_speech(cls, **overrides) -> "Recipe":
        """The authors' augmentation with every class drawn equally often: on the real
        held-out speakers it beat heavier augmentation (background noise for every width,
        speed perturbation, SpecAugment) at C=8 and C=16 (docs/training.md)."""
        base = dict(balance=True)
        base.update(overrides)
        return cls(**base)

    def background_probability(self, C: int) -> float:
        if self.p_background is not None:
            return self.p_background
        return 0.8 if C == 32 else 0.0


PRESETS = {"authors": Recipe, "real-speech": Recipe.real_speech}


OPTIMIZERS = ("sgd", "adamw")


def make_optimizer(params, recipe: Recipe) -> torch.optim.Optimizer:
    """SGD with momentum as the authors train, or AdamW; both take the recipe's weight decay
    (AdamW's is decoupled from the gradient, so the same number pulls differently)."""
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum,
                               weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}; choose one of {OPTIMIZERS}")


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


def reversed_unknown(waves, labels, p: float, gen):
    """Keyword clips played backwards with probability p, relabelled `_unknown_`: real
    voices saying something that is no keyword, which the real `_unknown_` clips (a few
    words) lack. `on` and `no` are left alone: each reversed sounds like the other."""
    from .data.labels import LABELS, SILENCE, UNKNOWN
    keep = {UNKNOWN, SILENCE, LABELS.index("on"), LABELS.index("no")}
    eligible = ~torch.isin(labels, torch.tensor(sorted(keep)))
    flip = eligible & (torch.rand(len(labels), generator=gen) < p)
    waves = torch.where(flip.unsqueeze(1), waves.flip(1), waves)
    return waves, torch.where(flip, torch.full_like(labels, UNKNOWN), labels)


def augmented_features(waves, labels, recipe: Recipe, C: int, gen, bank=None):
    """MFCC of one training batch after the recipe's waveform and feature augmentation, and
    the batch's labels (reversed clips become `_unknown_`)."""
    from .data.dataset import augment_batch, spec_augment
    from .data.labels import SILENCE
    from .features import mfcc_torch
    if recipe.p_reversed > 0:
        waves, labels = reversed_unknown(waves, labels, recipe.p_reversed, gen)
    if recipe.p_zero_silence > 0:
        # an all-zero input stays all zero through peak normalisation, and nothing else
        # in the data looks like it: without these the model calls it a keyword
        zero = (labels == SILENCE) & (torch.rand(len(labels), generator=gen)
                                      < recipe.p_zero_silence)
        waves = waves * (~zero).unsqueeze(1)
    x = mfcc_torch(augment_batch(waves, gen, background=bank,
                                 p_background=recipe.background_probability(C),
                                 snr_db=tuple(recipe.snr_db), speed=recipe.speed,
                                 p_speed=recipe.p_speed))
    return (spec_augment(x, gen) if recipe.spec_augment else x), labels


def _selection_loss(model, val: dict, x, y, real) -> float:
    """Validation loss on the real-speech clips when there are any (what the model is for),
    else on all of them."""
    if real is None:
        return val["loss"]
    return evaluate_features(model, x[real], y[real])["loss"]


SHIPPED_DIR = "sparknet_hw/checkpoints"


def git_revision() -> str | None:
    """The commit this code is at (with '+dirty' for uncommitted changes), if in a git tree.
    The shipped checkpoints' folder is left out: it holds the outputs of training (a
    parallel `make_shipped.sh` writes one width's checkpoint while another starts)."""
    import subprocess
    from pathlib import Path
    here = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=10)
        if rev.returncode:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                ".", f":(exclude){SHIPPED_DIR}"],
                               cwd=here, capture_output=True, text=True, timeout=10)
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def train(C: int, data_roots, out, recipe: Recipe = Recipe(), progress: bool = True,
          log=print) -> dict:
    """Train SparkNet-C on one or several dataset folders; keep the checkpoint with the
    best validation loss (on the real-speech folders when there are any) at `out`.
    Returns the training summary."""
    from .data.mixture import (DataMix, class_balanced_order, per_source_accuracy,
                               within_class_factors)

    check_width(C)
    commit = git_revision()          # the code as the run starts, not as it ends
    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    t0 = time.time()
    train_set = DataMix(data_roots, "train", seed=recipe.seed, holdout=recipe.holdout,
                        speaker_fraction=recipe.speaker_fraction,
                        folder_holdout=recipe.folder_holdout)
    val_set = DataMix(data_roots, "validation", seed=recipe.seed, holdout=recipe.holdout,
                      folder_holdout=recipe.folder_holdout)
    labels = train_set.labels
    val_x, val_y = val_set.features, val_set.labels
    real_mask = val_set.real if bool(val_set.real.any()) else None
    bank = train_set.noise_bank if recipe.background_probability(C) > 0 else None
    within_class = within_class_factors(train_set, recipe.unknown_by_word,
                                        recipe.source_weight)
    for row_t, row_v in zip(train_set.describe(), val_set.describe()):
        split = ("split lists" if row_t["mode"] == "lists"
                 else f"{row_t['holdout_percent']:g} % of speakers held out")
        log(f"data {row_t['name']} ({'synthetic' if row_t['synthetic'] else 'real'}, {split}): "
            f"{row_t['clips']} training clips, {row_v['clips']} validation clips, "
            f"{row_t['noise_files']} background-noise files")
        if row_t["noise_files"] == 0 and row_t["mode"] == "lists":
            log(f"  note: {row_t['path']} has no background noise (_background_noise_/*.wav): "
                f"its _silence_ examples are digital silence (all-zero clips)")
    if len(labels) == 0 or len(val_y) == 0:
        from .errors import UserError
        raise UserError(f"the data folders give {len(labels)} training and {len(val_y)} "
                        f"validation clips; a folder split by speaker needs --holdout above 0 "
                        f"for validation clips, or add a folder with split lists")
    log(f"data: {len(labels)} training clips, {len(val_y)} validation clips "
        f"({time.time() - t0:.1f} s)")

    model = SparkNet(C)
    model.gate_noise = recipe.gate_noise
    input_rms = None
    if recipe.precondition:
        from .features import mfcc_torch
        from .precondition import feature_rms, precondition_first_layer
        sample = torch.linspace(0, len(labels) - 1, min(len(labels), 2048)).long()
        input_rms = feature_rms(mfcc_torch(train_set.wave_batch(chunk))
                                for chunk in sample.split(256))
        precondition_first_layer(model, input_rms)
        log("preconditioned: MFCC RMS per coefficient " +
            " ".join(f"{v:.2f}" for v in input_rms.tolist()))
        input_rms = input_rms.tolist()
    from .distill import Teacher, WeightAverage
    average = WeightAverage(model, recipe.ema) if recipe.ema else None
    teacher = None
    opt = make_optimizer(model.parameters(), recipe)
    steps_per_epoch = (len(labels) + recipe.batch_size - 1) // recipe.batch_size
    total_steps = steps_per_epoch * recipe.epochs
    best = {"selection_loss": float("inf")}
    history = []
    step = 0
    sources = {"train": train_set.describe(), "validation": val_set.describe()}
    validation_speakers = {name: val_set.speakers(i) for i, name in enumerate(val_set.names)
                           if sources["validation"][i]["mode"] == "speakers"}
    if recipe.teacher:
        teacher = Teacher(recipe.teacher, validation_speakers, recipe.distill_temperature,
                          recipe.distill_weight)
        log(f"teacher: {recipe.teacher} (C={teacher.C}), distillation weight "
            f"{recipe.distill_weight:g} at temperature {recipe.distill_temperature:g}")
    bar = progress_bar(total=total_steps, desc=f"train C={C}", unit="batch",
                       disable=not progress)
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        order = (class_balanced_order(labels, gen, recipe.unknown_weight, within_class)
                 if recipe.balance else torch.randperm(len(labels), generator=gen))
        ce_sum, seen = 0.0, 0
        for i in range(0, len(order), recipe.batch_size):
            idx = order[i:i + recipe.batch_size]
            x, y = augmented_features(train_set.wave_batch(idx), labels[idx], recipe, C, gen,
                                      bank)
            for group in opt.param_groups:
                group["lr"] = poly_hold_decay(step, total_steps, recipe.lr)
            logits, mu = model(x)
            loss, ce = sparknet_loss(logits, mu, y, label_smoothing=recipe.label_smoothing,
                                     gate_noise=model.gate_noise,
                                     sparse_weight=recipe.sparsity_weight)
            if teacher is not None:
                loss = loss + CE_WEIGHT * (teacher.loss(logits, x, ce) - ce)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if average is not None:
                average.update(model)
            ce_sum += float(ce.detach()) * len(idx)
            seen += len(idx)
            step += 1
            bar.update(1)
        kept = model if average is None else average.model  # the weights a checkpoint holds
        val = evaluate_features(kept, val_x, val_y)
        by_source = per_source_accuracy(val_set, val.pop("predictions"))
        val.pop("predictions_hard")
        selection = _selection_loss(kept, val, val_x, val_y, real_mask)
        row = {"epoch": epoch, "train_ce": ce_sum / seen, **val, "selection_loss": selection,
               "per_source": by_source}
        history.append({k: v for k, v in row.items() if k != "per_source"}
                       | {"per_source": {n: r["accuracy"] for n, r in by_source.items()}})
        bar.set_postfix({"val": f"{val['accuracy']:.3f}", "sparsity": f"{val['gate_sparsity']:.2f}",
                         **{n[:10]: f"{r['accuracy']:.3f}" for n, r in by_source.items()
                            if r["accuracy"] is not None}})
        if selection < best["selection_loss"]:
            best = row
            save_checkpoint(out, "float", C, kept.state_dict(),
                            recipe=asdict(recipe), epoch=epoch, sources=sources,
                            validation_speakers=validation_speakers,
                            data=[str(r) for r in train_set.roots], commit=commit,
                            validation=row, input_rms=input_rms,
                            teacher=None if teacher is None else teacher.provenance)
    bar.close()
    summary = {"C": C, "checkpoint": str(out), "best": best, "epochs": recipe.epochs,
               "seconds": round(time.time() - t0, 1), "history": history}
    log(f"best epoch {best['epoch']}: validation accuracy {best['accuracy']:.4f}, "
        f"hard-gate accuracy {best['accuracy_hard_gate']:.4f}, gate sparsity "
        f"{best['gate_sparsity']:.3f}; saved {out} ({summary['seconds']} s)")
    for name, r in best["per_source"].items():
        if r["accuracy"] is None:
            continue
        classes = "  ".join(f"{k}={100 * v:.0f}" for k, v in r["per_class"].items() if v is not None)
        log(f"  {name}: {100 * r['accuracy']:.1f} % of {r['samples']} clips; {classes}")
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
    # the training gate's noise travels with the weights, so QAT fine-tunes with the same
    recipe = (payload.get("meta") or {}).get("recipe") or {}
    model.gate_noise = float(recipe.get("gate_noise", GATE_NOISE_STD))
    return model.eval()
