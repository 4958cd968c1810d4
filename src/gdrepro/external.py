"""Public datasets the paper scale downloads once: where from, their checksums, where they go.

``gdrepro external fetch NAME`` (what the Snakemake rule ``external_dataset`` runs) downloads an
archive into the external data folder (``GDREPRO_EXTERNAL_DATA``, default ``./external``, ignored
by git and by DVC) with pooch (a progress bar, an atomic temporary file, the hash check; we retry
a failed download a few times with back-off), checks its MD5 against the publisher's, unpacks it,
and writes a marker file
``.fetched/<NAME>`` there that the paper-scale rules depend on, so nothing is downloaded twice.
Without network access it stops with a one-line error that says what to download by hand and
where to put it. The smoke and default scales never need any of this.
"""

from __future__ import annotations

import shutil
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from gdrepro.data import file_md5
from gdrepro.datasets import external_root
from gdrepro.errors import GdreproError
from gdrepro.runtime import log


@dataclass(frozen=True)
class ExternalDataset:
    """One downloadable archive (or single file) and the folder it becomes."""

    url: str
    md5: str | None  # the publisher's checksum; None: not published, the MD5 is printed instead
    folder: str  # what appears under the external folder once unpacked
    about: str
    into_folder: bool = False  # the archive has no top folder of its own: unpack it into ``folder``

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


CATALOG: dict[str, ExternalDataset] = {
    "cifar10": ExternalDataset(
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
        "cifar-10-batches-py", "CIFAR-10, python pickles (ko, clu)"),
    "cifar100": ExternalDataset(
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
        "cifar-100-python", "CIFAR-100, python pickles (ko)"),
    "tinyimagenet": ExternalDataset(
        "http://cs231n.stanford.edu/tiny-imagenet-200.zip", "90528d7ca1a48142e341f4ef8d21d0de",
        "tiny-imagenet-200", "TinyImageNet 200 classes, 64x64 (clu)"),
    "imdb": ExternalDataset(
        "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz", "7c2ac02c03563afcf9b574c7e56c153a",
        "aclImdb", "IMDB movie reviews, aclImdb layout (ko)"),
}


def marker(name: str, root: Path | None = None) -> Path:
    """The file a finished fetch leaves behind (what Snakemake tracks)."""
    return Path(root or external_root()) / ".fetched" / name


ATTEMPTS = 3


def download(spec: ExternalDataset, root: Path, timeout: float) -> Path:
    """``spec``'s file in ``root``, downloaded with pooch (``ATTEMPTS`` tries, back-off between)."""
    import pooch

    progress = sys.stderr.isatty()  # a bar on a terminal; a job's log gets pooch's start/end lines
    downloader = pooch.HTTPDownloader(progressbar=progress, timeout=timeout)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return Path(pooch.retrieve(spec.url, known_hash=None, fname=spec.filename, path=root,
                                       downloader=downloader, progressbar=progress))
        except Exception as error:  # requests' and pooch's errors: connection, timeout, HTTP status
            if attempt == ATTEMPTS:
                raise GdreproError(
                    f"cannot download {spec.filename} ({type(error).__name__}: {error}); without network, "
                    f"download {spec.url} elsewhere and put {spec.filename} into {root}/, then rerun"
                ) from None
            log(f"download of {spec.url} failed ({error}); retry {attempt}/{ATTEMPTS - 1}")
            time.sleep(2.0**attempt)
    raise AssertionError("unreachable")


def fetch(name: str, root: Path | None = None, timeout: float = 60.0) -> Path:
    """Download, check and unpack dataset ``name`` once; return its folder."""
    if name not in CATALOG:
        raise GdreproError(f"unknown external dataset {name!r} (known: {', '.join(CATALOG)})")
    spec, root = CATALOG[name], Path(root or external_root())
    done = marker(name, root)
    if done.exists():
        return root / spec.folder
    root.mkdir(parents=True, exist_ok=True)
    archive = root / spec.filename
    if not archive.exists():
        log(f"downloading {spec.url} -> {archive}")
        archive = download(spec, root, timeout)
    actual = file_md5(archive)
    if spec.md5 is not None and actual != spec.md5:
        raise GdreproError(f"{archive}: MD5 {actual} != published {spec.md5}; delete it and download again")
    if spec.md5 is None:
        log(f"{archive}: no published checksum; MD5 {actual} (compare with a colleague's copy)")
    _unpack(archive, root, spec)
    done.parent.mkdir(exist_ok=True)
    done.write_text(f"{spec.url}\nmd5 {actual}\n")
    return root / spec.folder


def _unpack(archive: Path, root: Path, spec: ExternalDataset) -> None:
    target = root / spec.folder if spec.into_folder else root
    target.mkdir(parents=True, exist_ok=True)
    if archive.name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
    elif archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(target)
    else:  # a single file
        shutil.copy2(archive, target / archive.name)
    if not (root / spec.folder).is_dir():
        raise GdreproError(f"{archive} did not unpack into {root / spec.folder}")
