"""Checkpoints for long training: resume an interrupted run where it stopped.

A stage saves ``{"step": k, ...state_dicts...}`` every so often with :func:`save` and, when it
starts, continues from :func:`load` if a checkpoint exists. Writes are atomic (a temporary file
renamed over the old one), so a run killed mid-write leaves the previous checkpoint intact.
Checkpoints live in ``results/<scale>/<paper>/checkpoints/`` (see ``StageContext``), which git
ignores.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def save(path: Path, state: dict[str, Any]) -> None:
    """Atomically write ``state`` (tensors, state dicts, numbers) to ``path`` with torch.save."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load(path: Path, device: str = "cpu") -> dict[str, Any] | None:
    """The saved state mapped onto ``device``, or None when there is no checkpoint yet."""
    import torch

    path = Path(path)
    if not path.exists():
        return None
    return torch.load(path, map_location=device, weights_only=False)
