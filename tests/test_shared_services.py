"""Team set-ups from the README: runs go to an MLflow tracking server, data to a shared DVC remote.

Both are exercised for real: an ``mlflow server`` on 127.0.0.1 (as a lab server would run) and a
second DVC remote beside the repository's own (as a shared drive or bucket would be).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from gdrepro import data, papers
from tests.conftest import ROOT

WRITER = """
import sys
from pathlib import Path
from gdrepro import tracking
seed = int(sys.argv[1])
figure = Path(sys.argv[2]) / f"figure{seed}.png"
figure.write_bytes(b"png")
with tracking.tracked_run("quantile", "smoothed", "smoke", seed, {"n": 10}, "test") as run:
    run.log_curve("loss", range(1500), [1.0 / (k + 1) for k in range(1500)])
    run.log_artifacts([figure], "figures")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    server = subprocess.Popen(
        ["mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{root / 'store.db'}", "--artifacts-destination", str(root / "artifacts")],
        cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                break
        except OSError:
            time.sleep(1)
    else:
        server.kill()
        pytest.fail("mlflow server did not come up in 600 s")
    yield uri
    server.terminate()
    server.wait(timeout=30)


def test_parallel_jobs_log_runs_and_figures_to_a_tracking_server(mlflow_server, tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server, "GDREPRO_TRACKING": "on"}
    jobs = [subprocess.Popen([sys.executable, "-c", WRITER, str(seed), str(tmp_path)], env=env, cwd=tmp_path,
                             stderr=subprocess.PIPE, text=True) for seed in range(3)]
    errors = [job.communicate(timeout=900)[1] for job in jobs]
    assert all(job.returncode == 0 for job in jobs) and not any("tracking unavailable" in e for e in errors), errors
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server)
    runs = client.search_runs([client.get_experiment_by_name("gdrepro/quantile").experiment_id])
    assert sorted(r.data.tags["gdrepro.seed"] for r in runs) == ["0", "1", "2"]
    for run in runs:
        assert len(client.get_metric_history(run.info.run_id, "loss")) == 1500
        seed = run.data.tags["gdrepro.seed"]
        assert [a.path for a in client.list_artifacts(run.info.run_id, "figures")] == [f"figures/figure{seed}.png"]


@pytest.mark.skipif(shutil.which("dvc") is None, reason="dvc CLI not installed")
def test_a_shared_dvc_remote_restores_data_in_another_clone(tmp_path):
    """Push to a second (shared) remote from one clone; a colleague's clone pulls from it."""
    shared = tmp_path / "shared-remote"

    def clone(name):
        repo = tmp_path / name
        (repo / ".dvc").mkdir(parents=True)
        for rel in ("data.dvc", ".dvcignore", ".dvc/config", ".dvc/.gitignore"):
            shutil.copy(ROOT / rel, repo / rel)
        subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
        # the README's command for a team remote: added beside `local`, made the default here
        dvc(repo, "remote", "add", "--local", "-d", "shared", str(shared))
        return repo

    def dvc(repo, *args):
        result = subprocess.run(["dvc", *args], cwd=repo, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]

    mine = clone("mine")
    data.build(mine / "data", papers.dataset_builders())
    dvc(mine, "commit", "-q", "-f", "data.dvc")
    dvc(mine, "push", "-q")
    theirs = clone("theirs")
    assert not (theirs / "data").exists()
    dvc(theirs, "pull", "-q")
    assert data.verify(theirs / "data", theirs / "data.dvc", papers.dataset_builders())["nfiles"] == len(papers.dataset_builders())
