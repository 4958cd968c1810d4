"""Download-once external datasets: checksum, unpack, marker, no second download, offline error."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest

from gdrepro import external
from gdrepro.errors import GdreproError


def _tarball(path):
    payload = b"fake cifar batch"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A catalog entry whose URL is a local file (urllib reads file:// like http://)."""
    source = tmp_path / "server" / "cifar-10-python.tar.gz"
    source.parent.mkdir()
    md5 = _tarball(source)
    spec = external.ExternalDataset(source.as_uri(), md5, "cifar-10-batches-py", "test")
    monkeypatch.setitem(external.CATALOG, "cifar10", spec)
    return source, spec


def test_fetch_checks_unpacks_marks_and_never_downloads_twice(tmp_path, served):
    source, spec = served
    root = tmp_path / "external"
    folder = external.fetch("cifar10", root)
    assert folder == root / "cifar-10-batches-py"
    assert (folder / "data_batch_1").read_bytes() == b"fake cifar batch"
    assert external.marker("cifar10", root).read_text().endswith(f"md5 {spec.md5}\n")
    source.unlink()  # the source is gone: a second fetch must not need it
    assert external.fetch("cifar10", root) == folder


def test_a_corrupt_download_is_refused(tmp_path, served, monkeypatch):
    _, spec = served
    monkeypatch.setitem(external.CATALOG, "cifar10", external.ExternalDataset(spec.url, "0" * 32, spec.folder, ""))
    with pytest.raises(GdreproError, match="MD5 .* != published 0{32}"):
        external.fetch("cifar10", tmp_path / "external")
    assert not external.marker("cifar10", tmp_path / "external").exists()


def test_without_network_the_error_says_what_to_download_and_where(tmp_path, monkeypatch):
    unreachable = external.ExternalDataset("http://127.0.0.1:9/cifar-10-python.tar.gz", None, "x", "")
    monkeypatch.setitem(external.CATALOG, "cifar10", unreachable)
    with pytest.raises(GdreproError, match=r"download http://127.0.0.1:9/cifar-10-python.tar.gz elsewhere .* into"):
        external.fetch("cifar10", tmp_path / "external", timeout=5)
    assert not list((tmp_path / "external").glob("*.part"))


def test_a_single_file_dataset_lands_in_its_folder(tmp_path, monkeypatch):
    source = tmp_path / "agaricus-lepiota.data"
    source.write_text("p,x,s\n")
    monkeypatch.setitem(external.CATALOG, "mushroom",
                        external.ExternalDataset(source.as_uri(), None, "aacbr", "", into_folder=True))
    assert (external.fetch("mushroom", tmp_path / "ext") / "agaricus-lepiota.data").read_text() == "p,x,s\n"
