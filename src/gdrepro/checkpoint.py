"""Checkpoints for long training: resume an interrupted run where it stopped, bit for bit.

A per-seed stage saves ``{"step": k, ...state dicts, generator states, curves so far...}`` every
so often with :func:`save` and, when it starts, continues from :func:`load` if a checkpoint
exists (``ctx.checkpoint_path``: ``results/<scale>/<paper>/checkpoints/seed<k>.pt``, which git
ignores). Writes are atomic (a temporary file renamed over the old one), so a run killed
mid-write leaves the previous checkpoint intact. A resumed run must give the same bits as an
uninterrupted one: save every random generator's state with the model, and restore them all.

Tests kill a run for real: with ``GDREPRO_TEST_KILL_AFTER_SAVES=n`` the process sends itself
SIGKILL right after its n-th save (no clean-up, no ``finally``), as a pre-empted cluster job would.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

KILL_AFTER_SAVES = "GDREPRO_TEST_KILL_AFTER_SAVES"
_saves = 0


def save(path: Path, state: dict[str, Any]) -> None:
    """Atomically write ``state`` (tensors, state dicts, numbers) to ``path`` with torch.save."""
    import torch

    global _saves
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)
    _saves += 1
    if _saves == int(os.environ.get(KILL_AFTER_SAVES, 0)):
        os.kill(os.getpid(), signal.SIGKILL)


def load(path: Path, device: str = "cpu") -> dict[str, Any] | None:
    """The saved state mapped onto ``device``, or None when there is no checkpoint yet.

    Generator states (``torch.Generator.get_state()``) are byte tensors: restore them with
    ``generator.set_state(state.cpu())`` whatever ``device`` is.
    """
    import torch

    path = Path(path)
    if not path.exists():
        return None
    return torch.load(path, map_location=device, weights_only=False)


def remove(path: Path) -> None:
    """Delete a finished run's checkpoint (and its folder once empty)."""
    path = Path(path)
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:
        pass
