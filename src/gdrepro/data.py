"""Dataset registry and the check that ``data/`` matches ``data.dvc``.

``data/`` belongs to DVC (``data.dvc`` pins its content hash); Snakemake never writes it.
Every dataset the smoke and default scales use is either generated in code or taken from an
installed package, deterministically, so a fresh clone can rebuild ``data/`` byte for byte
instead of pulling it (``gdrepro data verify --build-missing``); ``dvc pull`` gives the same.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path

import yaml

from gdrepro.errors import GdreproError
from gdrepro.runtime import log

Builder = Callable[[Path], None]


def build(data_dir: Path, builders: Mapping[str, Builder], only_missing: bool = False) -> list[str]:
    """Generate ``builders``' datasets (path under data/ -> builder; the papers' are
    ``gdrepro.papers.dataset_builders()``) under ``data_dir``; return what was written."""
    written = []
    for relpath, builder in sorted(builders.items()):
        path = data_dir / relpath
        if only_missing and path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        builder(path)
        written.append(relpath)
        log(f"built data/{relpath}")
    return written


def file_md5(path: Path) -> str:
    """MD5 of a file, read in 1 MiB blocks (DVC's file hash; also checks downloads)."""
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checked_file(path: Path, md5: str, what: str) -> Path:
    """``path`` after checking it exists and has MD5 ``md5``: a real dataset shipped in a paper's
    ``data/`` folder (``what`` names it in the error; PROVENANCE.md beside it says where from)."""
    path = Path(path)
    if not path.exists():
        raise GdreproError(f"missing {path}: the package ships {what} (see data/PROVENANCE.md)")
    digest = file_md5(path)
    if digest != md5:
        raise GdreproError(f"{path} has MD5 {digest}, expected {md5}: not {what} (see data/PROVENANCE.md)")
    return path


def directory_hash(data_dir: Path) -> dict:
    """DVC 3's hash of a directory: md5 of its sorted ``[{md5, relpath}]`` JSON, plus ``.dir``.

    Computed here (milliseconds, no git or DVC repo needed) and cross-checked against
    ``dvc add`` in the tests.
    """
    files = sorted(p for p in data_dir.rglob("*") if p.is_file())
    entries = [{"md5": file_md5(p), "relpath": p.relative_to(data_dir).as_posix()} for p in files]
    entries.sort(key=lambda e: e["relpath"])
    blob = json.dumps(entries, sort_keys=True).encode("utf-8")
    return {
        "md5": hashlib.md5(blob).hexdigest() + ".dir",
        "nfiles": len(files),
        "size": sum(p.stat().st_size for p in files),
        "files": {e["relpath"]: e["md5"] for e in entries},
    }


def pinned_hash(dvc_file: Path) -> dict:
    """The ``outs[0]`` entry of ``data.dvc``."""
    if not dvc_file.exists():
        raise GdreproError(f"missing {dvc_file.resolve()}: run gdrepro from the repository root, or pass "
                           "--data <repository>/data (data.dvc sits beside it)")
    outs = yaml.safe_load(dvc_file.read_text()).get("outs") or [{}]
    return outs[0]


def verify(data_dir: Path, dvc_file: Path, builders: Mapping[str, Builder], build_missing: bool = False) -> dict:
    """Check ``data_dir`` against ``dvc_file``; fail loudly on any drift.

    With ``build_missing``, datasets absent from ``data_dir`` (a fresh clone: DVC's data is not
    in git) are generated first. Returns the verified hash record.
    """
    pinned = pinned_hash(dvc_file)
    missing = [rel for rel in builders if not (data_dir / rel).exists()]
    if missing and build_missing:
        log(f"data/ lacks {len(missing)} dataset(s); generating them (or run `dvc pull`)")
        build(data_dir, builders, only_missing=True)
    elif missing:
        raise GdreproError(
            f"missing dataset {data_dir / missing[0]} (run `dvc pull` or `gdrepro data verify --build-missing`)"
        )
    actual = directory_hash(data_dir)
    if actual["md5"] != pinned.get("md5"):
        raise GdreproError(
            f"data/ drifted from {dvc_file.name}: md5 {actual['md5']} ({actual['nfiles']} files) != "
            f"pinned {pinned.get('md5')} ({pinned.get('nfiles')} files); restore it with `dvc pull`/"
            f"`dvc checkout`, or, if the change is intended, `dvc add data` and commit {dvc_file.name}"
        )
    return actual
