"""Two training aids for small models on little real data: an exponential moving average of
the weights, and a wider trained SparkNet as teacher (knowledge distillation).

Both leave the model itself unchanged: the checkpoint holds ordinary SparkNet weights, so
quantization, export and hardware do not know they were used."""
from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from .errors import UserError


class WeightAverage:
    """Exponential moving average of every floating-point parameter and buffer (the batch-norm
    running statistics too, so the averaged model is consistent). The decay ramps up over the
    first steps, so early epochs are not dominated by the random initialisation."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise UserError(f"--ema {decay}: the averaging decay is 0 < decay < 1 (e.g. 0.999)")
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        self.steps = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.steps += 1
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for avg, cur in zip(self.model.state_dict().values(), model.state_dict().values()):
            if avg.dtype.is_floating_point:
                avg.mul_(d).add_(cur, alpha=1 - d)
            else:
                avg.copy_(cur)


class Teacher:
    """A trained float SparkNet whose softened outputs the student also learns from. It must
    have been trained with the same validation speakers as the student: a teacher that heard
    them would leak them into the student and make its validation figures worthless."""

    def __init__(self, path, validation_speakers: dict, temperature: float, weight: float):
        from .checkpoint import load_checkpoint
        from .train import load_float_model
        if not 0 < weight <= 1:
            raise UserError(f"--distill-weight {weight}: the share of the distillation term is "
                            f"0 < weight <= 1")
        if temperature <= 0:
            raise UserError(f"--distill-temperature {temperature}: must be above 0")
        payload = load_checkpoint(path, kind="float")
        heard = payload.get("meta", {}).get("validation_speakers")
        if heard is None:
            raise UserError(f"{path}: the checkpoint does not record its validation speakers, so "
                            f"it cannot be shown to be a fair teacher; train it again with "
                            f"this version")
        if _as_sets(heard) != _as_sets(validation_speakers):
            raise UserError(f"{path}: the teacher was trained with other validation speakers than "
                            f"this run; train the teacher with the same --data folders, "
                            f"--holdout and --seed, or the student learns the held-out speakers")
        self.path = Path(path)
        self.C = payload["C"]
        self.provenance = {"path": str(path), "sha256": _sha256(path), "C": payload["C"],
                           "commit": payload["meta"].get("commit"),
                           "epoch": payload["meta"].get("epoch"),
                           "recipe": payload["meta"].get("recipe")}
        self.model = load_float_model(payload, path).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.temperature = temperature
        self.weight = weight

    def loss(self, student_logits, x, ce):
        """(1 - w) * cross-entropy + w * T^2 * KL(teacher || student) at temperature T."""
        with torch.no_grad():
            target, _ = self.model(x)
        t = self.temperature
        kd = nn.functional.kl_div(nn.functional.log_softmax(student_logits / t, dim=1),
                                  nn.functional.log_softmax(target / t, dim=1),
                                  log_target=True, reduction="batchmean") * t * t
        return (1 - self.weight) * ce + self.weight * kd


def _sha256(path) -> str:
    import hashlib
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _as_sets(speakers: dict) -> dict:
    return {name: set(s) for name, s in (speakers or {}).items()}
