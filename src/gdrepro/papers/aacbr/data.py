"""Datasets of the Gradual AA-CBR experiments, with the official notebooks' splits.

- iris, WDBC: scikit-learn's copies; train_test_split 80/20 (random_state 42), then 80/20 again
  (train / val / test = 64 / 16 / 20 %); z-scored with the training split's mean and sd
  (ddof = 1, as torch.std). WDBC labels are recoded to the official order B = 0, M = 1.
- glioma (UCI "Glioma Grading Clinical and Mutation Features", TCGA_InfoWithGrade.csv): Grade
  is the label; the 21 binary features Gender + 20 mutations (Age and Race dropped, as the
  official notebooks do); same 64/16/20 split, no scaling.
- mushroom (UCI agaricus-lepiota.data): the 22 categorical attributes one-hot encoded (categories
  of the whole file), labels e = 0, p = 1; rows permuted with np.random.seed(1), first 200 train,
  next 50 val, the rest test (the official notebook's split).

At smoke/default scale glioma and mushroom are replaced by stand-ins generated in code in the
same file formats (read by the same parsers); at paper scale the real files must be supplied.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gdrepro.datasets import external_root
from gdrepro.errors import GdreproError
from gdrepro.runtime import rng

GLIOMA_COLUMNS = (
    "Grade,Gender,Age_at_diagnosis,Race,IDH1,TP53,ATRX,PTEN,EGFR,CIC,MUC16,PIK3CA,NF1,PIK3R1,"
    "FUBP1,RB1,NOTCH1,BCOR,CSMD3,SMARCA4,GRIN2A,IDH2,FAT4,PDGFRA"
).split(",")
GLIOMA_FILE = "TCGA_InfoWithGrade.csv"
MUSHROOM_FILE = "agaricus-lepiota.data"
SOURCES = {
    GLIOMA_FILE: "https://archive.ics.uci.edu/dataset/759/glioma+grading+clinical+and+mutation+features",
    MUSHROOM_FILE: "https://archive.ics.uci.edu/dataset/73/mushroom",
}


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


# --- glioma: the UCI TCGA file and a generated stand-in in its format ---------------------------


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


GLIOMA_PREVALENCE = np.array([0.42, 0.48, 0.41, 0.26, 0.17, 0.13, 0.13, 0.12, 0.09, 0.08, 0.06,
                              0.05, 0.04, 0.04, 0.03, 0.03, 0.03, 0.03, 0.03, 0.03, 0.03])
# log-odds of GBM per feature (Gender, IDH1, TP53, ATRX, PTEN, EGFR, CIC, ...): ours, glioma-like
GLIOMA_EFFECT = np.array([0.2, -3.2, -0.3, -0.9, 1.3, 1.1, -1.2, 0.3, 0.2, 0.6, -0.4,
                          -1.0, 0.7, 0.0, 0.0, 0.0, 0.0, 0.0, -1.5, 0.0, 0.8])


def glioma_standin_text(n: int = 839) -> str:
    """A generated glioma-like table in the TCGA_InfoWithGrade.csv format (stand-in, not real data).

    Independent Bernoulli features with the real file's approximate prevalences; Grade drawn
    from a logistic model dominated by IDH1 (as in the real data, where IDH1 separates LGG/GBM).
    """
    g = rng("aacbr", "glioma-standin")
    X = (g.random((n, 21)) < GLIOMA_PREVALENCE).astype(int)
    logit = 1.0 + X @ GLIOMA_EFFECT
    grade = (g.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    age = np.round(np.clip(g.normal(50, 15, n), 15, 90), 2)
    race = g.choice(4, n, p=[0.9, 0.06, 0.03, 0.01])
    rows = [",".join(GLIOMA_COLUMNS)]
    for i in range(n):
        rows.append(",".join([str(grade[i]), str(X[i, 0]), f"{age[i]:g}", str(race[i])] + [str(v) for v in X[i, 1:]]))
    return "\n".join(rows) + "\n"


def glioma(text: str) -> Split:
    X, y, names = parse_glioma(text)
    return _split_64_16_20("glioma", X, y, True, names, scale=False)


# --- mushroom: the UCI file and a generated stand-in in its format ------------------------------


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


MUSHROOM_CARDINALITY = (6, 4, 10, 2, 9, 2, 2, 2, 12, 2, 5, 4, 4, 9, 9, 1, 4, 3, 5, 9, 6, 7)


def mushroom_standin_text(n: int = 8124) -> str:
    """A generated table in the agaricus-lepiota.data format (stand-in, not real data).

    22 categorical attributes with the real cardinalities; the label is a rule on attribute 5
    ("odor": 5 of its 9 values poisonous) and attribute 20 ("spore-print colour"), with 1% noise.
    """
    g = rng("aacbr", "mushroom-standin")
    letters = "abcdefghijklmnopqrstuvwxyz"
    codes = np.stack([g.integers(0, k, n) for k in MUSHROOM_CARDINALITY], axis=1)
    poisonous = (codes[:, 4] >= 4) | ((codes[:, 4] == 0) & (codes[:, 19] >= 6))
    flip = g.random(n) < 0.01
    label = np.where(poisonous ^ flip, "p", "e")
    return "\n".join(
        ",".join([label[i]] + [letters[c] for c in codes[i]]) for i in range(n)
    ) + "\n"


def mushroom(text: str, train: int = 200, val: int = 50) -> Split:
    X, y, names = parse_mushroom(text)
    state = np.random.RandomState(1)  # the official notebook: np.random.seed(1); permutation
    order = state.permutation(len(X))
    X, y = X[order].astype(np.float32), y[order]
    return Split("mushroom", X[:train], y[:train], X[train : train + val], y[train : train + val],
                 X[train + val :], y[train + val :], True, tuple(names))


# --- where the real files live ----------------------------------------------------------------


def external_file(name: str) -> Path:
    """Path of a downloaded UCI file: ``<external data>/aacbr/<name>`` (see gdrepro.datasets)."""
    path = external_root() / "aacbr" / name
    if not path.exists():
        raise GdreproError(
            f"missing {path}: the paper scale uses the UCI file {name}; download it from "
            f"{SOURCES[name]} and put it there (GDREPRO_EXTERNAL_DATA moves the external data folder)"
        )
    return path


def load(name: str, source: str) -> Split:
    """Dataset ``name`` (iris, wdbc, glioma, mushroom); ``source`` 'standin' or 'uci' for the binary sets."""
    if name == "iris":
        return iris()
    if name == "wdbc":
        return wdbc()
    if name not in ("glioma", "mushroom"):
        raise GdreproError(f"unknown aacbr dataset {name!r}")
    if source == "standin":
        return glioma(glioma_standin_text()) if name == "glioma" else mushroom(mushroom_standin_text())
    if source != "uci":
        raise GdreproError(f"unknown data source {source!r} (standin or uci)")
    if name == "glioma":
        return glioma(external_file(GLIOMA_FILE).read_text())
    return mushroom(external_file(MUSHROOM_FILE).read_text())
