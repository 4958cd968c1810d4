"""Data for the KO experiments beyond the house's (gdrepro.datasets: MNIST-1D, CIFAR): a synthetic
intent-classification text task and the IMDB loader (aclImdb folders) for the paper scale.

Every function returns ``{"x", "y", "x_test", "y_test"}`` numpy arrays. Nothing here downloads:
the paper-scale loader reads a folder the user supplies (``GDREPRO_EXTERNAL_DATA`` or the ``data_root``
setting) and fails with a one-line GdreproError saying how to get the files.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np

from gdrepro.errors import GdreproError

PAD = 0


def synthetic_text(
    n_train: int,
    n_test: int,
    rng: np.random.Generator,
    vocab: int = 500,
    length: int = 24,
    classes: int = 7,
    keywords: int = 8,
) -> dict[str, np.ndarray]:
    """A Snips/IMDB stand-in: token sequences whose class shows through a few keywords.

    Class c owns ``keywords`` token ids; a sequence holds 2-4 keywords of its class, with
    probability 1/2 one keyword of another class (a distractor), and Zipf-distributed filler
    tokens; token 0 is padding (sequences have random length 12..``length``).
    """
    n = n_train + n_test
    kw = 1 + np.arange(classes * keywords).reshape(classes, keywords)
    filler_lo = 1 + classes * keywords
    ranks = np.arange(1, vocab - filler_lo + 1)
    zipf = (1.0 / ranks) / (1.0 / ranks).sum()
    y = rng.integers(0, classes, n)
    lengths = rng.integers(12, length + 1, n)
    x = filler_lo + rng.choice(ranks.size, size=(n, length), p=zipf)
    x[np.arange(length)[None, :] >= lengths[:, None]] = PAD
    n_kw = rng.integers(2, 5, n)
    for slot in range(4):  # at most 4 keywords: place them at random positions inside the length
        use = slot < n_kw
        pos = rng.integers(0, lengths)
        x[use, pos[use]] = kw[y[use], rng.integers(0, keywords, n)[use]]
    other = (y + rng.integers(1, classes, n)) % classes
    distract = rng.random(n) < 0.5
    pos = rng.integers(0, lengths)
    x[distract, pos[distract]] = kw[other[distract], rng.integers(0, keywords, n)[distract]]
    x, y = x.astype(np.int64), y.astype(np.int64)
    return {"x": x[:n_train], "y": y[:n_train], "x_test": x[n_train:], "y_test": y[n_train:]}


TOKEN = re.compile(r"[a-z0-9']+")


def imdb(root: Path, vocab: int = 20_000, length: int = 256) -> dict[str, np.ndarray]:
    """IMDB reviews from the aclImdb layout ({train,test}/{pos,neg}/*.txt) as padded token ids.

    Lower-cased word tokens; the ``vocab - 2`` most frequent training words get ids 2.., 1 is
    out-of-vocabulary, 0 padding; reviews are cut to ``length`` tokens. y: 1 = positive.
    """
    base = Path(root) / "aclImdb"
    if not (base / "train" / "pos").is_dir() or not (base / "test" / "neg").is_dir():
        raise GdreproError(
            f"imdb: missing {base}/{{train,test}}/{{pos,neg}}/; download "
            "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz and unpack it into "
            f"{root}, or set GDREPRO_EXTERNAL_DATA to the folder that holds aclImdb/"
        )

    def read(split: str) -> tuple[list[list[str]], np.ndarray]:
        docs, labels = [], []
        for label, sub in ((0, "neg"), (1, "pos")):
            for path in sorted((base / split / sub).glob("*.txt")):
                text = path.read_text(encoding="utf-8", errors="replace").lower().replace("<br />", " ")
                docs.append(TOKEN.findall(text))
                labels.append(label)
        return docs, np.array(labels, dtype=np.int64)

    train, y = read("train")
    test, y_test = read("test")
    counts = Counter(w for doc in train for w in doc)
    ids = {w: i + 2 for i, (w, _) in enumerate(counts.most_common(vocab - 2))}

    def encode(docs: list[list[str]]) -> np.ndarray:
        out = np.full((len(docs), length), PAD, dtype=np.int64)
        for r, doc in enumerate(docs):
            toks = [ids.get(w, 1) for w in doc[:length]]
            out[r, : len(toks)] = toks
        return out

    return {"x": encode(train), "y": y, "x_test": encode(test), "y_test": y_test}
