"""data/ and data.dvc: our hash equals DVC's, drift fails loudly, generation is deterministic."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gdrepro import data, papers
from gdrepro.errors import GdreproError

ROOT = Path(__file__).resolve().parents[1]


def test_generated_data_matches_the_committed_data_dvc(tmp_path):
    data.build(tmp_path / "data", papers.dataset_builders())
    pinned = data.pinned_hash(ROOT / "data.dvc")
    actual = data.directory_hash(tmp_path / "data")
    assert actual["md5"] == pinned["md5"], "data generation is not deterministic or data.dvc is stale"
    assert (actual["nfiles"], actual["size"]) == (pinned["nfiles"], pinned["size"])


@pytest.mark.skipif(shutil.which("dvc") is None, reason="dvc CLI not installed")
def test_directory_hash_equals_dvc_add(tmp_path):
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data" / "b.txt").write_text("b\r\nwindows line\n")
    (tmp_path / "data" / "sub" / "a.bin").write_bytes(bytes(range(256)))
    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["dvc", "add", "-q", "data"], cwd=tmp_path, check=True)
    pinned = yaml.safe_load((tmp_path / "data.dvc").read_text())["outs"][0]
    assert data.directory_hash(tmp_path / "data")["md5"] == pinned["md5"]


def _pinned_copy(tmp_path) -> tuple[Path, Path]:
    data_dir = tmp_path / "data"
    data.build(data_dir, papers.dataset_builders())
    dvc_file = tmp_path / "data.dvc"
    shutil.copy(ROOT / "data.dvc", dvc_file)
    return data_dir, dvc_file


def test_drift_fails_loudly(tmp_path):
    data_dir, dvc_file = _pinned_copy(tmp_path)
    assert data.verify(data_dir, dvc_file, papers.dataset_builders())["md5"].endswith(".dir")
    truth = data_dir / "quantile" / "truth.csv"
    truth.write_text(truth.read_text().replace("0.05", "0.06", 1))
    with pytest.raises(GdreproError, match=r"data/ drifted from data.dvc: .*dvc pull"):
        data.verify(data_dir, dvc_file, papers.dataset_builders())


def test_missing_dataset_is_named_or_rebuilt(tmp_path):
    data_dir, dvc_file = _pinned_copy(tmp_path)
    (data_dir / "quantile" / "truth.csv").unlink()
    with pytest.raises(GdreproError, match=r"missing dataset \S*data/quantile/truth.csv \(run `dvc pull`"):
        data.verify(data_dir, dvc_file, papers.dataset_builders())
    data.verify(data_dir, dvc_file, papers.dataset_builders(), build_missing=True)
    assert (data_dir / "quantile" / "truth.csv").exists()


@pytest.mark.skipif(shutil.which("dvc") is None, reason="dvc CLI not installed")
def test_dvc_push_and_pull_round_trip_through_the_local_remote(tmp_path):
    """The committed DVC set-up works: push to a local remote, lose data and cache, pull back."""
    repo = tmp_path / "repo"
    (repo / ".dvc").mkdir(parents=True)
    for rel in ("data.dvc", ".dvcignore", ".dvc/config", ".dvc/.gitignore"):
        shutil.copy(ROOT / rel, repo / rel)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    data.build(repo / "data", papers.dataset_builders())
    remote = tmp_path / "remote"

    def dvc(*args):
        subprocess.run(["dvc", *args], cwd=repo, check=True, capture_output=True, text=True)

    dvc("remote", "modify", "--local", "local", "url", str(remote))
    dvc("commit", "-q", "-f", "data.dvc")  # fill the cache from data/
    dvc("push", "-q")
    shutil.rmtree(repo / "data")
    shutil.rmtree(repo / ".dvc" / "cache")
    dvc("pull", "-q")
    assert data.verify(repo / "data", repo / "data.dvc", papers.dataset_builders())["nfiles"] == len(papers.dataset_builders())


def test_the_data_check_is_never_committed():
    """results/<scale>/data.json stands for *this* machine's data/; committed, a fresh clone
    (where data/ is absent) would skip the rule that restores it."""
    result = subprocess.run(["git", "check-ignore", "-q", "results/default/data.json"], cwd=ROOT)
    assert result.returncode == 0
