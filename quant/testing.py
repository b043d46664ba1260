"""Small fixed-point SparkNets built in seconds, for tests (here and in rtl/, sim/).

`small_qat_model` gives a Brevitas model whose gates actually switch (neither always open
nor always shut), with calibrated power-of-two scales and, optionally, a few QAT steps so
that the learned scale parameters (not just the calibration statistics) are exercised.
"""
from __future__ import annotations

import torch

from sparknet_hw.model import N_CLASSES, N_FEATURES, N_FRAMES, SparkNet

from .qat_model import QuantSparkNet


def random_float_sparknet(C: int, seed: int = 0, features: torch.Tensor | None = None) -> SparkNet:
    """A float SparkNet with random weights and random (non-trivial) BatchNorm statistics.
    Its head BN is centred on `features` (default: random_features) so that each gate is
    open on about half of the frames and the gate counts differ between clips."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = SparkNet(C)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
                m.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=gen))
                m.weight.copy_(0.5 + torch.rand(n, generator=gen))
                m.bias.copy_(0.6 * torch.rand(n, generator=gen) - 0.3)
        model.head_bn.bias.zero_()
        model.classifier.weight.mul_(8.0)
        model.eval()
        x = features if features is not None else random_features(64, seed)
        a = x
        for block in model.blocks:
            a = block(a)
        h = model.head(a)                                   # [N, 32, T] before the head BN
        model.head_bn.running_mean.copy_(h.transpose(0, 1).reshape(N_FEATURES, -1)
                                         .median(dim=1).values)
        model.head_bn.running_var.copy_(h.var(dim=(0, 2)) + 1e-3)
    return model


def random_features(n: int, seed: int = 0, scale: float = 4.0) -> torch.Tensor:
    """MFCC-like random clips: a per-clip offset per coefficient, a slow random envelope
    over time and white noise, so that clips differ from each other and frames within one."""
    gen = torch.Generator().manual_seed(seed)
    offset = torch.randn(n, N_FEATURES, 1, generator=gen)
    slow = torch.randn(n, N_FEATURES, N_FRAMES // 10 + 2, generator=gen)
    slow = torch.nn.functional.interpolate(slow, size=N_FRAMES, mode="linear", align_corners=True)
    noise = torch.randn(n, N_FEATURES, N_FRAMES, generator=gen)
    return scale * (offset + slow + 0.5 * noise)


def small_qat_model(C: int, weight_bits: int = 8, act_bits: int = 8, seed: int = 0,
                    train_steps: int = 0, calib_batches: int = 4, batch: int = 32,
                    features: torch.Tensor | None = None,
                    input_bits: int | None = None, input_shift=None) -> QuantSparkNet:
    """Random float SparkNet -> QuantSparkNet, calibrated on random (or given) features,
    then `train_steps` QAT steps with the STE gate on random labels. Returned in eval mode.
    input_shift: per-feature input gains (log2); by default 0, 1 in turn, so every test
    model has a different input frac per feature."""
    from sparknet_hw.model import sparknet_loss
    x = features if features is not None else random_features(batch * calib_batches, seed)
    fmodel = random_float_sparknet(C, seed, x)
    if input_shift is None:
        input_shift = torch.arange(N_FEATURES) % 2
    model = QuantSparkNet.from_float(fmodel, weight_bits, act_bits, calib_steps=calib_batches,
                                     input_bits=input_bits, input_shift=input_shift)
    model.calibrate([x[i:i + batch] for i in range(0, len(x), batch)][:calib_batches])
    if train_steps:
        gen = torch.Generator().manual_seed(seed + 1)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        model.train()
        model.gate_mode = "ste"
        for step in range(train_steps):
            idx = torch.randint(0, len(x), (batch,), generator=gen)
            y = torch.randint(0, N_CLASSES, (batch,), generator=gen)
            logits, mu = model(x[idx])
            loss, _ = sparknet_loss(logits, mu, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()
