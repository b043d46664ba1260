"""Float SparkNet (Svirsky et al., Interspeech 2024), as described in shared/SPARKNET.md."""
from __future__ import annotations

import torch
from torch import nn

N_FEATURES = 32          # MFCC coefficients per frame (F)
N_FRAMES = 101           # frames per 1-s clip (T)
N_CLASSES = 12
WIDTHS = (4, 8, 16, 32)
# (depthwise kernel over time, has residual branch) for the four blocks
BLOCKS = ((11, False), (15, True), (19, True), (29, True))
BN_EPS = 1e-3
GATE_NOISE_STD = 0.5


class UnsupportedWidth(ValueError):
    pass


def check_width(C: int) -> int:
    if C not in WIDTHS:
        raise UnsupportedWidth(f"unsupported width C={C}: SparkNet is defined for C in {list(WIDTHS)}")
    return C


class SeparableBlock(nn.Module):
    """Time-channel separable block: depthwise -> pointwise -> BN (+ 1x1 residual -> BN) -> ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, residual: bool):
        super().__init__()
        self.kernel = kernel
        self.depthwise = nn.Conv1d(c_in, c_in, kernel, padding=kernel // 2, groups=c_in, bias=False)
        self.pointwise = nn.Conv1d(c_in, c_out, 1, bias=False)
        self.bn = nn.BatchNorm1d(c_out, eps=BN_EPS)
        self.residual = None
        if residual:
            self.residual = nn.Sequential(nn.Conv1d(c_in, c_out, 1, bias=False),
                                          nn.BatchNorm1d(c_out, eps=BN_EPS))

    def forward(self, x):
        y = self.bn(self.pointwise(self.depthwise(x)))
        if self.residual is not None:
            y = y + self.residual(x)
        return torch.relu(y)


class SparkNet(nn.Module):
    """Backbone -> head (mu = tanh) -> gate z -> mean over time -> linear.

    forward() returns (logits, mu). The gate is stochastic in training mode and
    z = clamp(mu + 0.5, 0, 1) in eval mode; with ``hard_gate`` set, z = [mu > 0],
    which is what the hardware computes.
    """

    def __init__(self, C: int = 8, n_classes: int = N_CLASSES):
        super().__init__()
        self.C = check_width(C)
        chans = [N_FEATURES] + [C] * len(BLOCKS)
        self.blocks = nn.ModuleList(
            SeparableBlock(chans[i], chans[i + 1], k, res) for i, (k, res) in enumerate(BLOCKS))
        self.head = nn.Conv1d(C, N_FEATURES, 1, bias=True)
        self.head_bn = nn.BatchNorm1d(N_FEATURES, eps=BN_EPS)
        self.classifier = nn.Linear(N_FEATURES, n_classes)
        self.hard_gate = False
        self.gate_noise = GATE_NOISE_STD  # std of the training gate's noise (the authors' 0.5)

    def gate(self, mu):
        if self.hard_gate:
            return (mu > 0).to(mu.dtype)
        if self.training:
            return torch.clamp(mu + 0.5 + self.gate_noise * torch.randn_like(mu), 0.0, 1.0)
        return torch.clamp(mu + 0.5, 0.0, 1.0)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        mu = torch.tanh(self.head_bn(self.head(x)))
        z = self.gate(mu)
        return self.classifier(z.mean(dim=2)), mu


def sparsity_loss(mu, sigma: float = GATE_NOISE_STD):
    """Expected fraction of open gates: mean of Phi((mu + 0.5) / sigma)."""
    return torch.distributions.Normal(0.0, 1.0).cdf((mu + 0.5) / sigma).mean()


CE_WEIGHT = 100.0  # the authors' weight of the cross-entropy against the sparsity term


def sparknet_loss(logits, mu, target, ce_weight: float = CE_WEIGHT, sparse_weight: float = 1.0,
                  label_smoothing: float = 0.0, gate_noise: float = GATE_NOISE_STD):
    ce = nn.functional.cross_entropy(logits, target, label_smoothing=label_smoothing)
    return ce_weight * ce + sparse_weight * sparsity_loss(mu, gate_noise), ce
