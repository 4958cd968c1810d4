"""A rollout GIF of a saved policy, when a MuJoCo renderer is available (optional output).

MuJoCo chooses its OpenGL backend from ``MUJOCO_GL`` when it is first imported, so each backend
is tried in a child process (``python -m gdrepro.papers.amppo.render``): ``MUJOCO_GL`` if it is
set, else ``egl`` then ``osmesa``, all headless. EGL needs ``libegl1`` and Mesa's
``libegl-mesa0``/``libgl1-mesa-dri`` (software rendering, no GPU needed); OSMesa needs
``libosmesa6`` (Debian/Ubuntu package names). Without either the GIF is skipped with one log line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from gdrepro.runtime import log

BACKENDS = ("egl", "osmesa")
FRAME_EVERY, FRAME_MS = 8, 64  # one frame per 8 env steps (Hopper dt 8 ms) shown 64 ms: real time


def render_rollout(policy: dict[str, np.ndarray], env_id: str, path: Path, frames: int = 100,
                   timeout: float = 900) -> bool:
    """Write a GIF of (up to ``frames`` frames of) one deterministic episode of ``policy``; False,
    with nothing written, without a renderer."""
    path = Path(path)
    backends = (os.environ["MUJOCO_GL"],) if os.environ.get("MUJOCO_GL") else BACKENDS
    errors = []
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "policy.npz"
        np.savez(saved, **policy)
        for gl in backends:
            try:
                child = subprocess.run([sys.executable, "-m", __name__, str(saved), env_id, str(path), str(frames)],
                                       env=os.environ | {"MUJOCO_GL": gl}, capture_output=True, text=True,
                                       timeout=timeout)
            except subprocess.TimeoutExpired:
                errors.append(f"{gl}: timed out")
                continue
            if child.returncode == 0 and path.exists():
                log(f"wrote {path} (MUJOCO_GL={gl})")
                return True
            errors.append(f"{gl}: {(child.stderr.strip().splitlines() or ['failed'])[-1][:160]}")
    path.unlink(missing_ok=True)
    log(f"no MuJoCo renderer here ({'; '.join(errors)}); skipping the rollout GIF "
        "(to enable it install libegl1 libegl-mesa0 libgl1-mesa-dri, or libosmesa6 and set MUJOCO_GL=osmesa)")
    return False


def _write_gif(policy_npz: str, env_id: str, out: str, frames: str) -> None:
    from PIL import Image

    from gdrepro.papers.amppo.envs import evaluate_policy

    with np.load(policy_npz) as f:
        policy = dict(f)
    _, images = evaluate_policy(policy, env_id, 1, seed=0, frames=int(frames), frame_every=FRAME_EVERY, size=(240, 180))
    pictures = [Image.fromarray(f) for f in images]
    pictures[0].save(out, save_all=True, append_images=pictures[1:], duration=FRAME_MS, loop=0)


if __name__ == "__main__":
    _write_gif(*sys.argv[1:5])
