"""Models for the KO experiments: MLP and small CNN (MNIST-1D) and a bag-of-embeddings text
classifier; the paper-scale CIFAR ResNet-18 is the house's (gdrepro.nn.ResNet18)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def mlp(inputs: int = 40, hidden: int = 128, classes: int = 10) -> nn.Module:
    """40-128-128-10 ReLU MLP (the prototype's MNIST-1D network)."""
    return nn.Sequential(
        nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, classes)
    )


class CNN1d(nn.Module):
    """Small 1-D CNN for MNIST-1D: two conv layers (16, 32 channels), one linear head."""

    def __init__(self, length: int = 40, classes: int = 10, channels: tuple[int, int] = (16, 32)):
        super().__init__()
        c1, c2 = channels
        self.conv1 = nn.Conv1d(1, c1, 5, padding=2)
        self.conv2 = nn.Conv1d(c1, c2, 5, stride=2, padding=2)
        self.head = nn.Linear(c2 * ((length + 1) // 2), classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv1(x[:, None, :]))
        h = F.relu(self.conv2(h))
        return self.head(h.flatten(1))


class BagOfEmbeddings(nn.Module):
    """Mean of token embeddings (padding 0 ignored), then a one-hidden-layer classifier."""

    def __init__(self, vocab: int, classes: int, dim: int = 32, hidden: int = 64):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.fc = nn.Linear(dim, hidden)
        self.out = nn.Linear(hidden, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = (tokens != 0).unsqueeze(-1).to(self.embed.weight.dtype)
        pooled = (self.embed(tokens) * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return self.out(F.relu(self.fc(pooled)))
