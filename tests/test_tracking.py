"""MLflow tracking: parallel writers on one fresh SQLite store, batched metrics, off switch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gdrepro import tracking

WRITER = """
import sys
from gdrepro import tracking
seed = int(sys.argv[1])
with tracking.tracked_run("quantile", "smoothed", "smoke", seed, {"n": 10}, "test") as run:
    run.log_curve("loss", range(2500), [1.0 / (k + 1) for k in range(2500)])
print(run.run_id)
"""


def test_parallel_jobs_on_a_fresh_store_never_fail(tmp_path):
    """Six processes race to create the DB, the experiment and their runs; all must succeed."""
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "PATH": "/usr/bin:/bin"}
    import os

    env = {**os.environ, **env}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(s)], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for s in range(6)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    assert not any("tracking unavailable" in o[1] for o in outs), [o[1] for o in outs]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("gdrepro/quantile")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["gdrepro.seed"] for r in runs) == [str(s) for s in range(6)]
    assert {r.data.tags["gdrepro.rule"] for r in runs} == {"test"}
    history = client.get_metric_history(runs[0].info.run_id, "loss")
    assert len(history) == 2500 and runs[0].data.params == {"n": "10"}


def test_metrics_go_out_in_batches(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    calls = []
    from mlflow.tracking import MlflowClient

    original = MlflowClient.log_batch

    def spy(self, run_id, metrics=(), params=(), tags=(), **kw):
        calls.append(len(metrics))
        return original(self, run_id, metrics=metrics, params=params, tags=tags, **kw)

    monkeypatch.setattr(MlflowClient, "log_batch", spy)
    with tracking.tracked_run("quantile", "plain", "smoke", 0, {}, "test") as run:
        run.log_curve("x", range(2500), [0.0] * 2500)
    assert [c for c in calls if c] == [1000, 1000, 500]


def test_tracking_off_is_a_no_op(monkeypatch, tmp_path):
    monkeypatch.setenv("GDREPRO_TRACKING", "off")
    monkeypatch.chdir(tmp_path)
    with tracking.tracked_run("quantile", "plain", "smoke", 0, {}, "test") as run:
        run.log_metrics({"x": 1.0})
    assert run.run_id is None and not (tmp_path / "mlflow.db").exists()


def test_retry_gives_up_on_non_transient_errors():
    def boom():
        raise ValueError("schema mismatch")

    with pytest.raises(ValueError):
        tracking._retry(boom)
    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "ok"

    assert tracking._retry(flaky) == "ok" and len(attempts) == 3


def test_an_unreachable_server_costs_seconds_and_never_a_failure(monkeypatch, tmp_path):
    import time

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens on port 9
    start = time.perf_counter()
    tracking.init_store(["quantile"])
    with tracking.tracked_run("quantile", "plain", "smoke", 0, {}, "test") as run:
        run.log_metrics({"x": 1.0})
    assert run.run_id is None and time.perf_counter() - start < 30


def test_training_curves_are_live_with_their_own_timestamps(monkeypatch, tmp_path):
    """A long run's metrics reach the store while it trains, each stamped when it was logged."""
    import time

    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setattr(tracking, "FLUSH_SECONDS", 0.0)
    client = MlflowClient(uri)
    with tracking.tracked_run("grokking", "mlp", "smoke", 3, {}, "test") as run:
        run.log_metrics({"acc": 0.1}, step=0)
        time.sleep(0.05)
        run.log_metrics({"acc": 0.5}, step=50)
        live = client.get_metric_history(run.run_id, "acc")  # the run has not ended
        assert client.get_run(run.run_id).info.status == "RUNNING"
    assert [m.value for m in live] == [0.1, 0.5] and live[1].timestamp > live[0].timestamp
    name = client.get_run(run.run_id).info.run_name
    assert name.startswith("grokking/mlp/seed3/smoke/") and len(name.split("/")) == 5  # + the start time


def test_the_summary_run_has_every_scalar_the_verdicts_and_the_claims(monkeypatch, tmp_path):
    import json
    import shutil

    from mlflow.tracking import MlflowClient

    from gdrepro import papers, stages
    from tests.conftest import ROOT

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("GDREPRO_TRACKING", "on")
    out = tmp_path / "grokking"
    out.mkdir()
    shutil.copy(ROOT / "results" / "default" / "grokking" / "metrics.json", out)
    stages.judge_claims(papers.get("grokking"), "default", out)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("gdrepro/grokking")
    (summary,) = client.search_runs([experiment.experiment_id])
    assert summary.data.tags["gdrepro.seed"] == "all" and summary.info.run_name.startswith("grokking/summary/default/")
    scalars = {k: v["value"] for k, v in json.loads((out / "metrics.json").read_text())["metrics"].items()
               if v["value"] is not None}
    logged = summary.data.metrics
    assert all(logged[k] == pytest.approx(v) for k, v in scalars.items())
    judged = json.loads((out / "claims.json").read_text())["claims"]
    paper_claims = [c for c in judged if c["kind"] == "paper"]
    assert sum(v for k, v in logged.items() if k.startswith("verdicts.paper.")) == len(paper_claims)
    assert logged["verdicts.paper.reproduced"] == sum(c["verdict"] == "✅" for c in paper_claims)
    assert {a.path for a in client.list_artifacts(summary.info.run_id)} >= {"claims.md", "claims.json", "metrics.json"}


def test_paper_scale_runs_record_system_metrics(monkeypatch, tmp_path):
    import time

    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setattr(tracking, "SYSTEM_METRICS_SECONDS", 0.2)
    with tracking.tracked_run("ko", "sgd", "paper", 0, {}, "test") as run:
        time.sleep(1.5)
    metrics = MlflowClient(uri).get_run(run.run_id).data.metrics
    assert "system/cpu_utilization_percentage" in metrics and 0 <= metrics["system/cpu_utilization_percentage"] <= 100
    with tracking.tracked_run("ko", "sgd", "smoke", 0, {}, "test") as run:
        time.sleep(0.5)
    assert not [k for k in MlflowClient(uri).get_run(run.run_id).data.metrics if k.startswith("system/")]
