"""Shared datasets and networks: the CIFAR and TinyImageNet loaders on tiny stand-ins in their public formats,
MNIST-1D generated in code, the ResNet-18's size."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from gdrepro import datasets
from gdrepro.errors import GdreproError
from gdrepro.nn import ResNet18


def _write_cifar(root, name: str, n: int = 6) -> None:
    folder, train, test, key, _ = datasets.CIFAR[name]
    (root / folder).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, f in enumerate(train + test):
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), key: [(i + j) % 10 for j in range(n)]}
        with (root / folder / f).open("wb") as handle:
            pickle.dump(batch, handle)


@pytest.mark.parametrize("name,n_train_files", [("cifar10", 5), ("cifar100", 1)])
def test_cifar_loader_reads_the_python_pickles(tmp_path, name, n_train_files):
    _write_cifar(tmp_path, name)
    d = datasets.cifar(name, tmp_path)
    assert d["x"].shape == (6 * n_train_files, 3, 32, 32) and d["x"].dtype == np.uint8
    assert d["x_test"].shape == (6, 3, 32, 32) and d["y"].dtype == np.int64
    with (tmp_path / datasets.CIFAR[name][0] / datasets.CIFAR[name][1][0]).open("rb") as handle:
        first = pickle.load(handle)
    np.testing.assert_array_equal(d["x"][0].reshape(-1), first[b"data"][0])  # channel-major layout kept
    assert d["y"][:6].tolist() == list(first[datasets.CIFAR[name][3]])


def test_a_missing_cifar_says_where_to_download_it(tmp_path, monkeypatch):
    with pytest.raises(GdreproError, match="cifar-10-python.tar.gz"):
        datasets.cifar("cifar10", tmp_path)
    monkeypatch.setenv("GDREPRO_EXTERNAL_DATA", str(tmp_path))
    assert datasets.external_root() == tmp_path and datasets.external_root("elsewhere").name == "elsewhere"


def test_mnist1d_is_generated_in_code_and_leaves_numpy_global_state_alone():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    d = datasets.mnist1d(500)
    assert np.array_equal(np.random.get_state()[1], before)
    assert d["x"].shape == (400, 40) and d["x_test"].shape == (100, 40) and set(np.unique(d["y"])) <= set(range(10))


def test_resnet18_shapes_and_size():
    net = ResNet18(classes=100)
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(11.2e6, rel=0.02)
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 100)


def _write_tiny_imagenet(root, classes: int = 5, per_class: int = 3, val: int = 2) -> list[str]:
    from PIL import Image

    base = root / "tiny-imagenet-200"
    wnids = [f"n{i:08d}" for i in range(classes)]
    (base / "val" / "images").mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(wnids) + "\n")
    rng = np.random.default_rng(0)
    lines = []
    for c, w in enumerate(wnids):
        folder = base / "train" / w / "images"
        folder.mkdir(parents=True)
        for k in range(per_class):
            Image.fromarray(np.full((64, 64, 3), 10 * c + k, np.uint8)).save(folder / f"{w}_{k}.JPEG", quality=100)
        for k in range(val):
            name = f"val_{c}_{k}.JPEG"
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(base / "val" / "images" / name)
            lines.append(f"{name}\t{w}\t0\t0\t63\t63")
    (base / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return wnids


def test_tiny_imagenet_loader_reads_the_folder_layout(tmp_path):
    _write_tiny_imagenet(tmp_path)
    d = datasets.tiny_imagenet(tmp_path)
    assert d["x"].shape == (15, 3, 64, 64) and d["x"].dtype == np.uint8
    assert d["y"].tolist() == [c for c in range(5) for _ in range(3)]
    assert d["x_test"].shape == (10, 3, 64, 64) and d["y_test"].tolist() == [c for c in range(5) for _ in range(2)]
    assert abs(int(d["x"][4, 0, 10, 10]) - 11) <= 2  # class 1, image 1: grey level 11 (JPEG, quality 100)


def test_a_missing_tiny_imagenet_says_where_to_download_it(tmp_path):
    with pytest.raises(GdreproError, match="tiny-imagenet-200.zip"):
        datasets.tiny_imagenet(tmp_path)
