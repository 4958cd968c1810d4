"""House runtime helpers: seeds, threads, devices, checkpoints."""

from __future__ import annotations

import zlib

import numpy as np
import torch

from gdrepro import checkpoint, runtime


def test_rng_is_keyed_stably_and_keys_differ():
    a = runtime.rng("quantile", "main", 0).standard_normal(3)
    assert np.array_equal(a, runtime.rng("quantile", "main", 0).standard_normal(3))
    assert not np.array_equal(a, runtime.rng("quantile", "main", 1).standard_normal(3))
    # crc32-based, not Python's salted hash: this value is the same in every process
    assert runtime.seed_sequence("quantile", 0).entropy == [zlib.crc32(b"quantile"), 0] == [166318624, 0]


def test_torch_generator_is_keyed_like_rng():
    draw = lambda *key: torch.rand(3, generator=runtime.torch_generator(*key))  # noqa: E731
    assert torch.equal(draw("ko", 0), draw("ko", 0)) and not torch.equal(draw("ko", 0), draw("ko", 1))


def test_pin_threads_limits_blas_and_torch(monkeypatch):
    from threadpoolctl import threadpool_info

    monkeypatch.setenv("GDREPRO_THREADS", "1")
    before = torch.get_num_threads()
    try:
        assert runtime.pin_threads() == 1
        assert torch.get_num_threads() == 1
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())
    finally:
        torch.set_num_threads(before)


def test_device_falls_back_to_cpu_and_can_be_forced(monkeypatch):
    monkeypatch.delenv("GDREPRO_DEVICE", raising=False)
    assert runtime.device() == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("GDREPRO_DEVICE", "cpu")
    assert runtime.device() == "cpu"


def test_checkpoint_round_trip_and_resume(tmp_path):
    path = tmp_path / "checkpoints" / "seed0.pt"
    assert checkpoint.load(path) is None  # nothing yet: start from step 0
    model = torch.nn.Linear(3, 2)
    checkpoint.save(path, {"step": 7, "model": model.state_dict()})
    state = checkpoint.load(path)
    assert state["step"] == 7
    restored = torch.nn.Linear(3, 2)
    restored.load_state_dict(state["model"])
    assert torch.equal(restored.weight, model.weight)
    assert [p.name for p in path.parent.iterdir()] == ["seed0.pt"]  # no temporary file left


def test_flushed_denormals_zeroes_subnormals_inside_the_block_only():
    tiny = torch.tensor([1e-39, 1e-30], dtype=torch.float32)  # a float32 subnormal, a normal
    with runtime.flushed_denormals():
        inside = tiny * 1.0
    after = tiny * 1.0
    assert inside[0] == 0.0 and inside[1] == tiny[1]
    assert after[0] == tiny[0] and after[0] > 0
