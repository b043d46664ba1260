"""The authors' learning-rate schedule: linear warm-up, hold, then polynomial decay."""
from __future__ import annotations


def poly_hold_decay(step: int, total: int, base_lr: float, warmup: float = 0.05,
                    hold: float = 0.45, power: float = 2.0, min_lr: float = 1e-6) -> float:
    warmup_steps = max(1, int(warmup * total))
    hold_end = max(warmup_steps, int(hold * total))
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if step < hold_end:
        return base_lr
    progress = min(1.0, (step - hold_end) / max(1, total - hold_end))
    return (base_lr - min_lr) * (1.0 - progress) ** power + min_lr
