"""Classify audio files with a checkpoint."""
from __future__ import annotations

import torch

from .checkpoint import load_checkpoint
from .data.labels import LABELS


class Classifier:
    def __init__(self, model):
        self.model = model.eval()

    @classmethod
    def from_checkpoint(cls, path) -> "Classifier":
        payload = load_checkpoint(path)
        if payload["kind"] == "qat":
            from .quant.qat_model import load_qat_model
            return cls(load_qat_model(payload, path))
        from .train import load_float_model
        return cls(load_float_model(payload, path))

    @torch.no_grad()
    def classify_features(self, features) -> tuple[str, float]:
        """Label and softmax score of one [32, 101] float feature matrix."""
        x = torch.as_tensor(features, dtype=torch.float32)[None]
        logits = self.model(x)[0].float()
        probs = torch.softmax(logits[0], dim=0)
        k = int(probs.argmax())
        return LABELS[k], float(probs[k])

    def classify_file(self, path) -> tuple[str, float]:
        from .clips import audio_features
        return self.classify_features(audio_features(path))
