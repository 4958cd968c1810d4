"""One GPU per job on a multi-GPU machine.

Snakemake's ``resources: gpu=1`` is only a counter: ``--resources gpu=4`` lets four training
jobs run at once, but every one of them would see all four devices and start on ``cuda:0``.
A job that asks for a slot (the rules set ``GDREPRO_GPU_SLOT=1`` on their training jobs) takes
the first free device under a file lock and sees only that device through
``CUDA_VISIBLE_DEVICES``. The lock is an OS file lock: it is released when the job ends, also
when it is killed, so a crashed job never keeps a device.

Devices are counted from ``GDREPRO_GPUS`` (e.g. ``0,1,2,3``) or ``nvidia-smi -L``; with none, a
slot is a no-op and the job runs on the CPU.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from filelock import FileLock, Timeout

from gdrepro.errors import GdreproError

DEFAULT_LOCK_DIR = Path(os.environ.get("GDREPRO_GPU_LOCKS", "/tmp/gdrepro-gpu-slots"))


def visible_gpus() -> list[str]:
    """Device ids this machine offers to jobs (``GDREPRO_GPUS`` overrides the probe)."""
    if (listed := os.environ.get("GDREPRO_GPUS")) is not None:
        return [d.strip() for d in listed.split(",") if d.strip()]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


class GpuSlot:
    """Hold one device for the life of the process (or of a ``with`` block)."""

    def __init__(self, devices: list[str] | None = None, lock_dir: Path = DEFAULT_LOCK_DIR,
                 timeout: float = 24 * 3600, poll: float = 0.5) -> None:
        self.devices = visible_gpus() if devices is None else devices
        self.lock_dir, self.timeout, self.poll = Path(lock_dir), timeout, poll
        self.device: str | None = None
        self._lock: FileLock | None = None

    def acquire(self) -> str | None:
        """Take the first free device and pin ``CUDA_VISIBLE_DEVICES`` to it; wait while all are busy."""
        if not self.devices:
            return None
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.timeout
        while True:
            for device in self.devices:
                lock = FileLock(self.lock_dir / f"gpu{device}.lock")
                try:
                    lock.acquire(timeout=0)
                except Timeout:
                    continue
                self.device, self._lock = device, lock
                os.environ["CUDA_VISIBLE_DEVICES"] = device
                return device
            if time.monotonic() > deadline:
                raise GdreproError(
                    f"no free GPU among {self.devices} after {self.timeout:.0f} s; is --resources gpu=N "
                    f"larger than the number of devices? (locks in {self.lock_dir})"
                )
            time.sleep(self.poll)

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = self.device = None

    def __enter__(self) -> str | None:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def claim_for_job() -> str | None:
    """Called once at CLI start: take a slot if the rule asked for one and none is pinned yet.

    Must run before anything initialises CUDA. The slot is held until the process exits.
    """
    if os.environ.get("GDREPRO_GPU_SLOT") != "1" or "CUDA_VISIBLE_DEVICES" in os.environ:
        return None
    slot = GpuSlot()
    device = slot.acquire()
    claim_for_job.slot = slot  # keep the lock object (and so the lock) alive
    return device
