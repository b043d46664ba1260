"""Train the first depthwise layer as if every MFCC coefficient had unit RMS.

The 32 coefficients differ about 50x in RMS (c0 about 51, c31 about 0.36 on the shipped
training data). Plain SGD then moves the first layer's kernel of each coefficient at a rate
proportional to that coefficient's squared RMS: c0's kernel learns thousands of times faster
than c31's, and the high coefficients stay near their random start. Standardising the input
would fix this but changes the network (a scale in front of the first layer, and a mean the
zero padding does not see). Instead the first depthwise weights are reparametrised, w = v /
rms, with v trained: that is the same function, and for SGD with momentum and weight decay
it is the same as starting w at v0 / rms and scaling w's gradient by 1 / rms^2 per
coefficient. The checkpoint holds w, so nothing downstream (QAT, export, RTL) changes.
Measured at C = 8 on two seeds it bought nothing (docs/training.md): the uneven rates were
not what held the model back.
"""
from __future__ import annotations

import torch

from .model import SparkNet


@torch.no_grad()
def feature_rms(feature_batches) -> torch.Tensor:
    """[32] root-mean-square of each MFCC coefficient over batches of [B, 32, T] features."""
    total, count = None, 0
    for x in feature_batches:
        s = x.double().pow(2).sum(dim=(0, 2))
        total = s if total is None else total + s
        count += x.shape[0] * x.shape[2]
    if total is None or count == 0:
        raise ValueError("feature_rms needs at least one non-empty batch")
    return (total / count).sqrt().float().clamp_min(1e-3)


def precondition_first_layer(model: SparkNet, rms: torch.Tensor) -> None:
    """Rescale the first depthwise layer's start and its gradient (see the module doc)."""
    weight = model.blocks[0].depthwise.weight            # [32, 1, k]
    rms = torch.as_tensor(rms, dtype=weight.dtype).view(-1, 1, 1)
    if rms.shape[0] != weight.shape[0]:
        raise ValueError(f"{rms.shape[0]} RMS values for {weight.shape[0]} input features")
    with torch.no_grad():
        weight.div_(rms)
    inverse_square = rms.pow(-2)
    weight.register_hook(lambda grad: grad * inverse_square)
