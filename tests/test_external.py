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
def server(tmp_path):
    """A local HTTP server over ``tmp_path/server``: its base URL."""
    import functools
    import http.server
    import threading

    folder = tmp_path / "server"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", folder
    httpd.shutdown()


@pytest.fixture
def served(server, monkeypatch):
    """A catalog entry whose URL is on the local HTTP server."""
    url, folder = server
    source = folder / "cifar-10-python.tar.gz"
    md5 = _tarball(source)
    spec = external.ExternalDataset(f"{url}/{source.name}", md5, "cifar-10-batches-py", "test")
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
    monkeypatch.setattr(external.time, "sleep", lambda s: None)  # the retries' back-off
    with pytest.raises(GdreproError, match=r"download http://127.0.0.1:9/cifar-10-python.tar.gz elsewhere .* into"):
        external.fetch("cifar10", tmp_path / "external", timeout=5)
    assert [p.name for p in (tmp_path / "external").iterdir()] == []  # no partial file left behind


def test_a_failed_download_is_retried(tmp_path, served, monkeypatch):
    import pooch

    real, calls = pooch.retrieve, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("connection reset by peer")
        return real(*args, **kwargs)

    monkeypatch.setattr(pooch, "retrieve", flaky)
    monkeypatch.setattr(external.time, "sleep", lambda s: None)
    assert (external.fetch("cifar10", tmp_path / "external") / "data_batch_1").exists() and len(calls) == 2


def test_a_single_file_dataset_lands_in_its_folder(tmp_path, server, monkeypatch):
    url, folder = server
    source = folder / "agaricus-lepiota.data"
    source.write_text("p,x,s\n")
    monkeypatch.setitem(external.CATALOG, "mushroom",
                        external.ExternalDataset(f"{url}/{source.name}", None, "aacbr", "", into_folder=True))
    assert (external.fetch("mushroom", tmp_path / "ext") / "agaricus-lepiota.data").read_text() == "p,x,s\n"
