"""MLflow tracking: one experiment per paper, one run per (paper, method, seed, scale).

Runs are tracked, never required: ``GDREPRO_TRACKING=off`` turns tracking off, and a tracking
failure is logged, not raised. ``MLFLOW_TRACKING_URI`` points at a server; the default is a
SQLite file ``mlflow.db`` in the working directory (git ignores it).

Parallel jobs share one SQLite file, so: the store and the experiments are created once
(``gdrepro tracking init``, run by the Snakefile's ``onstart``, and under a file lock by
whoever comes first); metrics go out in batches (``log_batch``, at most 1000 per call, and at
least every ``FLUSH_SECONDS`` while a run trains, with the time each value was logged, so curves
are live in the UI); and every write is retried with back-off on "database is locked".

Runs are named ``<paper>/<method>/seed<k>/<scale>/<start time>`` (reruns are told apart) and
tagged with the paper, method, scale, seed, rule, git commit and the ``data.dvc`` hash. The
claims stage logs the paper's summary run ``<paper>/summary/<scale>/<start time>``: every scalar
of metrics.json, the verdict counts, claims.md/.json, metrics.json and the figures as artifacts,
and the latest per-seed runs as its children. At the paper scale every run also records MLflow's
system metrics (CPU, memory, GPU utilisation).
"""

from __future__ import annotations

import functools
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from gdrepro.runtime import git_commit, log

T = TypeVar("T")
BATCH = 1000  # MLflow's limit of metrics per log_batch call
FLUSH_SECONDS = float(os.environ.get("GDREPRO_FLUSH_SECONDS", "10"))  # buffered metrics are at most this old
SYSTEM_METRICS_SECONDS = float(os.environ.get("GDREPRO_SYSTEM_METRICS_SECONDS", "10"))  # paper scale: CPU, memory, GPU
RETRIES = 12


def best_effort(action: Callable[..., T]) -> Callable[..., T | None]:
    """Run a tracking action; log and swallow its failure (tracking never stops a run)."""

    @functools.wraps(action)
    def wrapper(*args: Any, **kwargs: Any) -> T | None:
        try:
            return action(*args, **kwargs)
        except Exception as error:
            log(f"MLflow: {action.__name__} failed ({type(error).__name__}: {error}); continuing")
            return None

    return wrapper


def enabled() -> bool:
    return os.environ.get("GDREPRO_TRACKING", "on").lower() not in {"off", "0", "false", "no"}


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` or ``sqlite:///<cwd>/mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def _retry(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``call``; on a locked or racing SQLite store, wait with jittered back-off and retry."""
    for attempt in range(RETRIES):
        try:
            return call(*args, **kwargs)
        except Exception as error:  # mlflow wraps sqlalchemy errors in MlflowException
            text = str(error).lower()
            transient = any(s in text for s in ("locked", "busy", "unique constraint", "timeout"))
            if not transient or attempt == RETRIES - 1:
                raise
            time.sleep(min(5.0, 0.05 * 2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


@functools.cache
def _server_reachable(uri: str) -> bool:
    """A quick ``/health`` probe, so a dead server costs seconds, not MLflow's long HTTP retries."""
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as response:
            return response.status == 200
    except Exception:
        return False


def _client():
    """An MlflowClient whose store is created under a file lock (SQLite migration races)."""
    from mlflow.tracking import MlflowClient

    uri = tracking_uri()
    if uri.startswith(("http://", "https://")) and not _server_reachable(uri):
        raise ConnectionError(f"no MLflow server answers at {uri}")
    if not uri.startswith("sqlite:///"):
        return MlflowClient(tracking_uri=uri)
    from filelock import FileLock

    with FileLock(uri.removeprefix("sqlite:///") + ".lock", timeout=300):
        client = MlflowClient(tracking_uri=uri)
        _retry(client.search_experiments, max_results=1)  # creates and migrates the store
    return client


def _experiment_id(client, paper: str) -> str:
    name = f"gdrepro/{paper}"
    found = _retry(client.get_experiment_by_name, name)
    if found is not None:
        return found.experiment_id
    try:
        return _retry(client.create_experiment, name)
    except Exception:  # another job created it first
        return _retry(client.get_experiment_by_name, name).experiment_id


@best_effort
def init_store(papers: Iterable[str]) -> None:
    """Create the store and one experiment per paper, once, before parallel jobs start."""
    if not enabled():
        return
    client = _client()
    for paper in papers:
        _experiment_id(client, paper)
    log(f"MLflow store ready at {tracking_uri()}")


class Run:
    """A handle on one MLflow run that buffers metrics and writes them in batches."""

    def __init__(self, client, run_id: str | None):
        self._client = client
        self.run_id = run_id
        self._pending: list = []
        self._flushed = time.monotonic()

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """Buffer ``metrics`` at ``step``, stamped now; sent when the buffer is full or old."""
        if self.run_id is None:  # tracking off or unavailable: not even the import
            return
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        self._pending += [Metric(k, float(v), stamp, int(step)) for k, v in metrics.items()]
        if len(self._pending) >= BATCH or time.monotonic() - self._flushed >= FLUSH_SECONDS:
            self.flush()

    def log_curve(self, name: str, steps: Iterable[int], values: Iterable[float]) -> None:
        """A metric curve (e.g. loss per step), buffered and sent with the next flush."""
        for step, value in zip(steps, values, strict=True):
            self.log_metrics({name: value}, step=step)

    @best_effort
    def log_artifacts(self, paths: Iterable[Path], folder: str | None = None) -> None:
        if self.run_id is None:
            return
        for path in paths:
            _retry(self._client.log_artifact, self.run_id, str(path), folder)

    @best_effort
    def flush(self) -> None:
        pending, self._pending, self._flushed = self._pending, [], time.monotonic()
        if self.run_id is not None:
            for i in range(0, len(pending), BATCH):
                _retry(self._client.log_batch, self.run_id, metrics=pending[i : i + BATCH])


@contextmanager
def tracked_run(
    paper: str,
    method: str,
    scale: str,
    seed: int | None,
    params: Mapping[str, Any],
    rule: str,
) -> Iterator[Run]:
    """One MLflow run named ``<paper>/<method>/seed<seed>/<scale>/<start time>`` with params and tags.

    Yields a :class:`Run` that does nothing when tracking is off or the store is unreachable;
    metrics are flushed in batches when the block ends.
    """
    if not enabled():
        yield Run(None, None)
        return
    from mlflow.entities import Param

    try:
        client = _client()
        experiment = _experiment_id(client, paper)
        tags = {
            "mlflow.source.git.commit": git_commit(),
            "gdrepro.paper": paper,
            "gdrepro.method": method,
            "gdrepro.scale": scale,
            "gdrepro.seed": "all" if seed is None else str(seed),
            "gdrepro.rule": rule,
            "gdrepro.data_md5": data_version(),
        }
        who = method if seed is None else f"{method}/seed{seed}"
        name = f"{paper}/{who}/{scale}/{time.strftime('%Y%m%d-%H%M%S')}"
        run_info = _retry(client.create_run, experiment, tags=tags, run_name=name).info
        params_list = [Param(k, str(v)[:6000]) for k, v in sorted(params.items())]
        for i in range(0, len(params_list), 100):
            _retry(client.log_batch, run_info.run_id, params=params_list[i : i + 100])
        run = Run(client, run_info.run_id)
    except Exception as error:  # tracking must never stop the science
        log(f"MLflow tracking unavailable ({type(error).__name__}: {error}); continuing")
        yield Run(None, None)
        return
    monitor = _system_metrics(run.run_id) if scale == "paper" else None
    status = "FINISHED"
    try:
        yield run
    except BaseException:
        status = "FAILED"
        raise
    finally:
        try:
            if monitor is not None:
                monitor.finish()
            run.flush()
            _retry(client.set_terminated, run.run_id, status)
        except Exception as error:
            log(f"MLflow: could not finish run {run.run_id}: {error}")


@best_effort
def _system_metrics(run_id: str):
    """MLflow's system metrics (CPU, memory, disk, network, GPU) sampled every
    ``SYSTEM_METRICS_SECONDS`` into the run, for the long jobs of the paper scale."""
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    monitor = SystemMetricsMonitor(run_id, sampling_interval=SYSTEM_METRICS_SECONDS, tracking_uri=tracking_uri())
    monitor.start()
    return monitor


@best_effort
def link_children(paper: str, scale: str, parent: Run) -> None:
    """Tag the latest per-seed run of each (method, seed) at ``scale`` as a child of ``parent``."""
    if parent.run_id is None:
        return
    client = parent._client
    experiment = _experiment_id(client, paper)
    runs = _retry(
        client.search_runs,
        [experiment],
        filter_string=f"tags.`gdrepro.scale` = '{scale}' and tags.`gdrepro.seed` != 'all'",
        order_by=["attributes.start_time DESC"],
        max_results=1000,
    )
    latest: dict[tuple[str, str], str] = {}
    for r in runs:
        latest.setdefault((r.data.tags["gdrepro.method"], r.data.tags["gdrepro.seed"]), r.info.run_id)
    for run_id in latest.values():
        _retry(client.set_tag, run_id, "mlflow.parentRunId", parent.run_id)


def data_version(dvc_file: Path = Path("data.dvc")) -> str:
    """The md5 that ``data.dvc`` pins for data/ (the version every job reads), or "unknown"."""
    try:
        import yaml

        return str(yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"])
    except Exception:
        return "unknown"


def log_summary(paper: str, scale: str, metrics: Mapping[str, float], artifacts: Iterable[Path],
                figures: Iterable[Path]) -> str | None:
    """The paper's summary run (seed "all"): every scalar ``metrics`` (metrics.json values and the
    verdict counts), ``artifacts`` (claims.md, claims.json, metrics.json) and ``figures``; the
    latest per-seed runs at ``scale`` become its children. Returns the run id (None if off)."""
    with tracked_run(paper, "summary", scale, None, {}, f"{paper}_claims") as run:
        run.log_metrics(metrics)
        run.log_artifacts(artifacts)
        run.log_artifacts(figures, "figures")
        link_children(paper, scale, run)
    return run.run_id
