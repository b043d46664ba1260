"""Parameter and MAC counts from the real modules, thop's counting convention.

thop counts a convolution as out_elements * (C_in / groups) * kernel, an affine
BatchNorm as 4 operations per element, a Linear as in_features * out_features,
and activations, mean and the gate as free. The counts here are taken with forward
hooks on a real forward pass, so they follow the model as built.
"""
from __future__ import annotations

from dataclasses import dataclass, asdict

import torch
from torch import nn

from .model import N_FEATURES, N_FRAMES, SparkNet


@dataclass
class LayerCost:
    name: str
    kind: str
    shape: str
    params: int
    macs: int


def _macs(module: nn.Module, out: torch.Tensor) -> int:
    per_sample = out[0].numel()
    if isinstance(module, nn.Conv1d):
        return per_sample * (module.in_channels // module.groups) * module.kernel_size[0]
    if isinstance(module, nn.BatchNorm1d):
        return 4 * per_sample if module.affine else 2 * per_sample
    if isinstance(module, nn.Linear):
        return per_sample * module.in_features
    raise TypeError(type(module))


def layer_costs(model: SparkNet, frames: int = N_FRAMES) -> list[LayerCost]:
    costs: list[LayerCost] = []
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv1d, nn.BatchNorm1d, nn.Linear)):
            def hook(mod, inp, out, name=name):
                if isinstance(mod, nn.Conv1d):
                    shape = f"{mod.in_channels}->{mod.out_channels} k{mod.kernel_size[0]}" + (
                        f" g{mod.groups}" if mod.groups > 1 else "")
                elif isinstance(mod, nn.Linear):
                    shape = f"{mod.in_features}->{mod.out_features}"
                else:
                    shape = f"{mod.num_features}"
                costs.append(LayerCost(name, type(mod).__name__, shape,
                                       sum(p.numel() for p in mod.parameters()), _macs(mod, out)))
            hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, N_FEATURES, frames))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return costs


def model_info(model: SparkNet) -> dict:
    costs = layer_costs(model)
    return {
        "C": model.C,
        "params": sum(p.numel() for p in model.parameters()),
        "macs": sum(c.macs for c in costs),
        "layers": [asdict(c) for c in costs],
    }
