"""The GPU slot allocator: concurrent jobs never share a device, and a dead job frees its slot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from gdrepro.errors import GdreproError
from gdrepro.gpu_slots import GpuSlot, claim_for_job, visible_gpus

JOB = textwrap.dedent("""
    import json, os, sys, time
    from gdrepro.gpu_slots import claim_for_job
    device = claim_for_job()
    start = time.time()
    time.sleep(float(sys.argv[2]))
    print(json.dumps({"device": device, "visible": os.environ["CUDA_VISIBLE_DEVICES"],
                      "start": start, "end": time.time()}))
""")


def _job_env(tmp_path, devices="0,1"):
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    return {**env, "GDREPRO_GPUS": devices, "GDREPRO_GPU_LOCKS": str(tmp_path), "GDREPRO_GPU_SLOT": "1"}


def test_concurrent_jobs_get_distinct_devices_and_queue_for_busy_ones(tmp_path):
    env = _job_env(tmp_path)
    jobs = [subprocess.Popen([sys.executable, "-c", JOB, str(i), "1.0"], env=env, stdout=subprocess.PIPE, text=True)
            for i in range(5)]
    spans = [json.loads(job.communicate(timeout=600)[0]) for job in jobs]
    assert all(s["device"] == s["visible"] and s["device"] in ("0", "1") for s in spans)
    for device in ("0", "1"):  # the spans on one device never overlap
        on_device = sorted((s["start"], s["end"]) for s in spans if s["device"] == device)
        assert all(prev_end <= start for (_, prev_end), (start, _) in zip(on_device, on_device[1:]))
    # five 1-second jobs on two devices cannot finish in under three rounds
    assert max(s["end"] for s in spans) - min(s["start"] for s in spans) >= 2.9


def test_a_killed_job_frees_its_device(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "unset-after-test")  # acquire() below pins it
    holder = subprocess.Popen([sys.executable, "-c", JOB, "0", "60"], env=_job_env(tmp_path, devices="7"),
                              stdout=subprocess.PIPE, text=True)
    try:
        assert _held(tmp_path, "7"), "the job never took its device"
        with pytest.raises(GdreproError, match="no free GPU"):
            GpuSlot(devices=["7"], lock_dir=tmp_path, timeout=0.5, poll=0.05).acquire()
        holder.kill()
        holder.wait()
        slot = GpuSlot(devices=["7"], lock_dir=tmp_path, timeout=5, poll=0.05)
        assert slot.acquire() == "7"
        slot.release()
    finally:
        holder.kill()


def _held(lock_dir, device, seconds=30.0) -> bool:
    """Wait until another process holds ``device``'s lock."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        probe = GpuSlot(devices=[device], lock_dir=lock_dir, timeout=0, poll=0.05)
        try:
            probe.acquire()
        except GdreproError:
            return True
        probe.release()
        time.sleep(0.1)
    return False


def test_no_devices_or_no_request_is_a_no_op(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setenv("GDREPRO_GPUS", "")
    assert visible_gpus() == [] and GpuSlot(lock_dir=tmp_path).acquire() is None
    monkeypatch.setenv("GDREPRO_GPUS", "0,1")
    monkeypatch.delenv("GDREPRO_GPU_SLOT", raising=False)
    assert claim_for_job() is None  # the rule did not ask for a GPU
    monkeypatch.setenv("GDREPRO_GPU_SLOT", "1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert claim_for_job() is None  # already pinned by the user or the cluster
