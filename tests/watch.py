"""Run a long command under a stall watch instead of a wall-clock limit.

A healthy smoke pipeline on a slow, busy machine may take many minutes; a hung job makes no
progress at all. :func:`run_watched` kills the command only when nothing under ``watch`` (its
logs and outputs) has changed and it has printed nothing for ``stall_s`` seconds, and then
fails with the jobs' last log lines, so CI says which job hung.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

STALL_S = float(os.environ.get("GDREPRO_TEST_STALL_S", 900))
"""Seconds without any progress before a command counts as hung (CI's own limit is 90 min)."""


def _last_change(paths: list[Path]) -> float:
    latest = 0.0
    for root in paths:
        if not root.exists():
            continue
        for dirpath, _, names in os.walk(root):
            for name in names:
                try:
                    latest = max(latest, os.stat(os.path.join(dirpath, name)).st_mtime)
                except FileNotFoundError:
                    pass
    return latest


def run_watched(cmd: list[str], cwd: Path, env: dict | None = None, watch: list[Path] = (),
                stall_s: float = STALL_S, poll_s: float = 5.0) -> subprocess.CompletedProcess:
    """Like ``subprocess.run(cmd, capture_output=True, text=True)``, failing the test on a stall."""
    with tempfile.TemporaryDirectory(prefix="gdrepro-watch-") as log_dir:
        out_path, err_path = Path(log_dir) / "stdout.txt", Path(log_dir) / "stderr.txt"
        watched = [out_path, err_path, *[Path(cwd) / w for w in watch]]
        with open(out_path, "w") as out, open(err_path, "w") as err:
            proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err, text=True,
                                    start_new_session=True)
            last_progress = time.time()
            while proc.poll() is None:
                time.sleep(poll_s)
                last_progress = max(last_progress, _last_change(watched))
                if time.time() - last_progress > stall_s:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    pytest.fail(f"{' '.join(cmd[:4])} ... made no progress for {stall_s:.0f} s (a hung job?); "
                                f"last output:\n{err_path.read_text()[-3000:]}\n{_hung_logs(cwd, watch)}")
        return subprocess.CompletedProcess(cmd, proc.returncode, out_path.read_text(), err_path.read_text())


def _hung_logs(cwd: Path, watch) -> str:
    logs = sorted((p for w in watch for p in (Path(cwd) / w).rglob("logs/*.log")), key=lambda p: p.stat().st_mtime)
    return "\n".join(f"--- {p.relative_to(cwd)}\n{p.read_text()[-500:]}" for p in logs[-3:])
