"""Datasets of the Gradual AA-CBR experiments, with the official notebooks' splits.

- iris, WDBC: scikit-learn's copies; train_test_split 80/20 (random_state 42), then 80/20 again
  (train / val / test = 64 / 16 / 20 %); z-scored with the training split's mean and sd
  (ddof = 1, as torch.std). WDBC labels are recoded to the official order B = 0, M = 1.
- glioma (UCI "Glioma Grading Clinical and Mutation Features", TCGA_InfoWithGrade.csv): Grade
  is the label; the 21 binary features Gender + 20 mutations (Age and Race dropped, as the
  official notebooks do); same 64/16/20 split (random_state 42, the official Gradual AA-CBR
  notebook's), no scaling.
- mushroom (UCI agaricus-lepiota.data): the 22 categorical attributes one-hot encoded (categories
  of the whole file, '?' one of them: 117 features), labels e = 0, p = 1; rows permuted with
  np.random.seed(1), first 200 train, next 50 val, the rest test (the official notebook's split).

The two UCI files ship with the package (``data/``, provenance, licence and MD5 in
``data/PROVENANCE.md``) and every scale reads them from there; each load checks the MD5.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gdrepro.data import checked_file
from gdrepro.errors import GdreproError

GLIOMA_COLUMNS = (
    "Grade,Gender,Age_at_diagnosis,Race,IDH1,TP53,ATRX,PTEN,EGFR,CIC,MUC16,PIK3CA,NF1,PIK3R1,"
    "FUBP1,RB1,NOTCH1,BCOR,CSMD3,SMARCA4,GRIN2A,IDH2,FAT4,PDGFRA"
).split(",")
GLIOMA_FILE = "TCGA_InfoWithGrade.csv"
MUSHROOM_FILE = "agaricus-lepiota.data"
DATA_DIR = Path(__file__).parent / "data"
MD5 = {GLIOMA_FILE: "8fbf31ba56bae886db10277360c2fd4e", MUSHROOM_FILE: "08abc775ae2a79b402cc75f3a29e4b7d"}


@dataclass(frozen=True)
class Split:
    """One dataset split into train / val / test; ``binary`` marks set-valued (0/1) features."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    binary: bool
    feature_names: tuple[str, ...]

    @property
    def n_classes(self) -> int:
        return int(np.max(self.y_train)) + 1


def _split_64_16_20(name, X, y, binary, names, seed=42, scale=True) -> Split:
    from sklearn.model_selection import train_test_split

    X_full, X_test, y_full, y_test = train_test_split(X, y, test_size=0.2, random_state=seed)
    X_tr, X_val, y_tr, y_val = train_test_split(X_full, y_full, test_size=0.2, random_state=seed)
    if scale:
        mu, sd = X_tr.mean(0), X_tr.std(0, ddof=1)
        X_tr, X_val, X_test = ((a - mu) / sd for a in (X_tr, X_val, X_test))
    f = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
    return Split(name, f(X_tr), y_tr.astype(int), f(X_val), y_val.astype(int), f(X_test), y_test.astype(int),
                 binary, tuple(names))


def iris() -> Split:
    from sklearn.datasets import load_iris

    d = load_iris()
    return _split_64_16_20("iris", d.data, d.target, False, d.feature_names)


def wdbc() -> Split:
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    return _split_64_16_20("wdbc", d.data, 1 - d.target, False, d.feature_names)  # B = 0, M = 1


def wine() -> Split:
    """scikit-learn's wine (3 classes, 13 continuous features): not in the paper; our held-out check
    of GradualAACBR()'s defaults, split and scaled as iris and WDBC."""
    from sklearn.datasets import load_wine

    d = load_wine()
    return _split_64_16_20("wine", d.data, d.target, False, d.feature_names)


# --- glioma: the UCI TCGA file ----------------------------------------------------------------


def parse_glioma(text: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Rows of TCGA_InfoWithGrade.csv -> (21 binary features, Grade, feature names)."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    header = lines[0].strip().split(",")
    if header != GLIOMA_COLUMNS:
        raise GdreproError(f"glioma file: unexpected header {header[:5]}... (want {GLIOMA_COLUMNS[:5]}...)")
    table = np.loadtxt(io.StringIO("\n".join(lines[1:])), delimiter=",", ndmin=2)
    keep = [1] + list(range(4, table.shape[1]))  # Gender + mutations (not Age, Race)
    X = table[:, keep]
    if not np.isin(X, (0, 1)).all():
        raise GdreproError("glioma file: the binary feature columns hold values other than 0/1")
    return X, table[:, 0].astype(int), [header[i] for i in keep]


def glioma(text: str) -> Split:
    X, y, names = parse_glioma(text)
    return _split_64_16_20("glioma", X, y, True, names, scale=False)


# --- mushroom: the UCI file -------------------------------------------------------------------


def parse_mushroom(text: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Rows of agaricus-lepiota.data -> (one-hot features, label e = 0 / p = 1, feature names)."""
    rows = [ln.strip().split(",") for ln in text.strip().splitlines() if ln.strip()]
    if any(len(r) != 23 for r in rows) or not {r[0] for r in rows} <= {"e", "p"}:
        raise GdreproError("mushroom file: want 23 comma-separated fields per row, the first e or p")
    cols = list(zip(*rows))
    y = np.array([c == "p" for c in cols[0]], dtype=int)
    blocks, names = [], []
    for j, col in enumerate(cols[1:]):
        cats = sorted(set(col))
        blocks.append(np.array(col)[:, None] == np.array(cats)[None, :])
        names += [f"a{j + 1}={c}" for c in cats]
    return np.hstack(blocks).astype(float), y, names


def mushroom(text: str, train: int = 200, val: int = 50) -> Split:
    X, y, names = parse_mushroom(text)
    state = np.random.RandomState(1)  # the official notebook: np.random.seed(1); permutation
    order = state.permutation(len(X))
    X, y = X[order].astype(np.float32), y[order]
    return Split("mushroom", X[:train], y[:train], X[train : train + val], y[train : train + val],
                 X[train + val :], y[train + val :], True, tuple(names))


# --- the shipped UCI files --------------------------------------------------------------------


def packaged_text(name: str) -> str:
    """Text of a UCI file shipped in ``data/``, after checking its MD5 (see data/PROVENANCE.md)."""
    path = checked_file(DATA_DIR / name, MD5[name], f"the UCI file {name}")
    return path.read_text(encoding="ascii")


def load(name: str) -> Split:
    """Dataset ``name`` (iris, wdbc, glioma, mushroom; wine) with the official notebooks' split."""
    if name == "iris":
        return iris()
    if name == "wdbc":
        return wdbc()
    if name == "wine":
        return wine()
    if name == "glioma":
        return glioma(packaged_text(GLIOMA_FILE))
    if name == "mushroom":
        return mushroom(packaged_text(MUSHROOM_FILE))
    raise GdreproError(f"unknown aacbr dataset {name!r}")
