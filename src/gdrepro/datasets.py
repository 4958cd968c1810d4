"""Public datasets shared by several papers.

MNIST-1D is generated in code (the ``mnist1d`` package, never its download path). The paper-scale
sets (CIFAR-10/100, TinyImageNet, ...) are read from a folder the user supplies, ``GDREPRO_EXTERNAL_DATA``
(default ``./external``, ignored by git) or a paper's ``data_root`` setting; a missing one is a
one-line GdreproError that says where to download it. Loaders return ``{"x", "y", "x_test",
"y_test"}`` numpy arrays.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from gdrepro.errors import GdreproError


def mnist1d(num_samples: int, seed: int = 42) -> dict[str, np.ndarray]:
    """MNIST-1D (Greydanus 2020) generated in code with ``mnist1d.data.make_dataset`` (no download).

    x: (n, 40) float32, y: int64 in 0..9; 80/20 train/test split as in the package.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed = int(num_samples), int(seed)
    state = np.random.get_state()  # make_dataset reseeds numpy's global generator; put it back
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(state)
    return {
        "x": d["x"].astype(np.float32),
        "y": d["y"].astype(np.int64),
        "x_test": d["x_test"].astype(np.float32),
        "y_test": d["y_test"].astype(np.int64),
    }


def external_root(setting: str = "") -> Path:
    """Where downloaded public datasets live: a paper's ``data_root`` setting, else
    ``GDREPRO_EXTERNAL_DATA``, else ./external."""
    return Path(setting or os.environ.get("GDREPRO_EXTERNAL_DATA", "external"))


CIFAR_HELP = (
    "download {url} and unpack it into {root} (giving {root}/{folder}/), or set GDREPRO_EXTERNAL_DATA "
    "to the folder that holds {folder}/"
)
CIFAR = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels",
                "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels",
                 "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"),
}


def cifar(name: str, root: Path) -> dict[str, np.ndarray]:
    """CIFAR-10/100 from the standard python pickles: x uint8 (n, 3, 32, 32), y int64."""
    folder, train_files, test_files, label_key, url = CIFAR[name]
    base = Path(root) / folder
    missing = [f for f in train_files + test_files if not (base / f).exists()]
    if missing:
        raise GdreproError(f"{name}: missing {base / missing[0]}; " + CIFAR_HELP.format(url=url, root=root, folder=folder))

    def read(files: list[str]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for f in files:
            with (base / f).open("rb") as handle:
                batch = pickle.load(handle, encoding="bytes")
            xs.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch[label_key], dtype=np.int64))
        return np.concatenate(xs), np.concatenate(ys)

    x, y = read(train_files)
    x_test, y_test = read(test_files)
    return {"x": x, "y": y, "x_test": x_test, "y_test": y_test}


TINY_HELP = ("download http://cs231n.stanford.edu/tiny-imagenet-200.zip and unzip it into {root} "
             "(giving {root}/tiny-imagenet-200/), or set GDREPRO_EXTERNAL_DATA to the folder that holds it")


def tiny_imagenet(root: Path) -> dict[str, np.ndarray]:
    """TinyImageNet from the tiny-imagenet-200 layout: ``wnids.txt``, ``train/<wnid>/images/*.JPEG``
    and ``val/images/*.JPEG`` labelled by ``val/val_annotations.txt`` (the validation split serves as
    test set, as is usual). x: uint8 (n, 3, 64, 64); labels follow the order of wnids.txt."""
    from PIL import Image

    base = Path(root) / "tiny-imagenet-200"
    if not (base / "wnids.txt").exists() or not (base / "val" / "val_annotations.txt").exists():
        raise GdreproError(f"tinyimagenet: missing {base}/wnids.txt or val/val_annotations.txt; "
                           + TINY_HELP.format(root=root))
    wnids = [w.strip() for w in (base / "wnids.txt").read_text().split() if w.strip()]
    label = {w: i for i, w in enumerate(wnids)}

    def read(paths: list[Path]) -> np.ndarray:
        out = np.zeros((len(paths), 3, 64, 64), dtype=np.uint8)
        for i, p in enumerate(paths):
            with Image.open(p) as im:
                out[i] = np.asarray(im.convert("RGB").resize((64, 64))).transpose(2, 0, 1)
        return out

    train = [(p, label[w]) for w in wnids for p in sorted((base / "train" / w / "images").glob("*.JPEG"))]
    val = []
    for line in (base / "val" / "val_annotations.txt").read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[1] in label:
            val.append((base / "val" / "images" / parts[0], label[parts[1]]))
    if not train or not val:
        raise GdreproError(f"tinyimagenet: no images under {base}/train or {base}/val; " + TINY_HELP.format(root=root))
    return {"x": read([p for p, _ in train]), "y": np.array([c for _, c in train], dtype=np.int64),
            "x_test": read([p for p, _ in val]), "y_test": np.array([c for _, c in val], dtype=np.int64)}
