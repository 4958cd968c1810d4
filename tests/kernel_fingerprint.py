"""A fingerprint of the kernels the pipeline leans on, computed in a fresh process.

    python -m tests.kernel_fingerprint      # prints {"versions": ..., "digests": {...}}

Each digest hashes the exact bits of one operation's result on fixed inputs: torch matmul,
exp-sum, softmax, a convolution, a linear layer's gradient, the house's portable square root and
fused Adam/AdamW steps (torch.sqrt itself is not portable, see gdrepro.kernels); numpy
matmul, exp, log, sin and an SVD. Under the portable kernels they must be the same on every x86-64 CPU
(tests/test_kernels.py compares them with the committed ones).
"""

from __future__ import annotations

import hashlib
import json

# isort: off
import gdrepro  # noqa: F401  (pins the kernels before numpy and torch load: keep it first)
import numpy as np
import torch
# isort: on

from gdrepro.nn import portable_sqrt


def _fused_steps(optimizer: type[torch.optim.Optimizer], g: torch.Generator, steps: int = 5) -> torch.Tensor:
    """A parameter after ``steps`` fused updates with weight decay on random gradients."""
    p = torch.nn.Parameter(torch.randn(300, 77, generator=g))
    opt = optimizer([p], lr=1e-2, weight_decay=1e-2, fused=True)
    for _ in range(steps):
        p.grad = torch.randn(300, 77, generator=g)
        opt.step()
    return p


def _digest(array) -> str:
    data = array.detach().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
    return hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest()[:16]


def fingerprint() -> dict:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(257, 129, generator=g), torch.randn(129, 65, generator=g)
    images, filters = torch.randn(4, 3, 32, 32, generator=g), torch.randn(8, 3, 3, 3, generator=g)
    layer = torch.nn.Linear(129, 33)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(33, 129, generator=g))
        layer.bias.zero_()
    torch.nn.functional.cross_entropy(layer(a), torch.arange(257) % 33).backward()
    rs = np.random.default_rng(0)
    A, B = rs.standard_normal((300, 200)), rs.standard_normal((200, 100))
    digests = {
        "torch_matmul": a @ b,
        "torch_exp_sum": a.exp().sum(0),
        "torch_softmax": torch.softmax(a, 1),
        "torch_conv2d": torch.nn.functional.conv2d(images, filters),
        "torch_linear_grad": layer.weight.grad,
        "torch_portable_sqrt": portable_sqrt(a.abs()),
        "torch_fused_adam": _fused_steps(torch.optim.Adam, g),
        "torch_fused_adamw": _fused_steps(torch.optim.AdamW, g),
        "numpy_matmul": A @ B,
        "numpy_exp_sum": np.exp(A).sum(0),
        "numpy_log1p_sum": np.log1p(np.abs(A)).sum(1),
        "numpy_sin_sum": np.sin(A).sum(1),
        "numpy_svd": np.linalg.svd(A, compute_uv=False),
    }
    return {
        "versions": {"numpy": np.__version__, "torch": torch.__version__.split("+")[0]},
        "digests": {name: _digest(value) for name, value in digests.items()},
    }


if __name__ == "__main__":
    print(json.dumps(fingerprint(), indent=2))
