"""Network architectures shared by several papers, written in plain torch (torchvision is not a
dependency: its wheels do not import beside the CPU build of torch that CI installs), and the one
elementwise op whose CPU kernel is not the same on every processor (:func:`portable_sqrt`)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def portable_sqrt(x: torch.Tensor) -> torch.Tensor:
    """Square root with the same bits on every x86-64 CPU (see gdrepro.kernels).

    On the CPU, ``torch.sqrt`` (and ``x ** 0.5``) run through MKL's vector maths, which is not
    correctly rounded and whose bits depend on the processor: an emulated AMD EPYC gave other
    results than this Intel machine even under the portable kernel pin. ``torch.rsqrt`` is torch's
    own vector code (one IEEE square root, one division), identical everywhere, so we take
    ``x * rsqrt(x)``: within 2 ulp of the true root, with sqrt(0) = 0 and sqrt(inf) = inf kept.
    Differentiable. On a GPU it is ``torch.sqrt``. Optimisers get the same property from
    ``fused=True`` (torch's fused Adam/AdamW kernel takes an exact IEEE square root).
    """
    if x.device.type != "cpu":
        return torch.sqrt(x)  # not on the CPU
    return torch.where((x == 0) | torch.isinf(x), x, x * torch.rsqrt(x))


def portable_pow(x: torch.Tensor, exponent: float) -> torch.Tensor:
    """``x ** exponent`` for a tensor and an exponent known only at run time, portable.

    torch turns a scalar exponent of 0.5 into ``torch.sqrt`` (MKL's vector maths, not portable:
    clu's adaptive weights ``loss ** lam`` with lam = 0.5 moved 14 smoke metrics on an AMD EPYC
    with AVX-512); that case takes :func:`portable_sqrt`. Other exponents run torch's own kernels.
    """
    return portable_sqrt(x) if exponent == 0.5 else x**exponent


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 for 32x32 images: [2, 2, 2, 2] basic blocks, widths 64-512."""

    def __init__(self, classes: int = 10, width: int = 64):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        layers, cin = [], width
        for i, cout in enumerate((width, 2 * width, 4 * width, 8 * width)):
            for b in range(2):
                layers.append(BasicBlock(cin, cout, 2 if (i > 0 and b == 0) else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.layers(self.stem(x))
        return self.fc(F.adaptive_avg_pool2d(h, 1).flatten(1))
