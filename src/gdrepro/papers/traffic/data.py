"""Data for the traffic experiments: the paper's macroscopic data, simulated stand-ins and loaders.

- Macroscopic, every scale: the official release's ``dataNew.npz`` (loop detectors; flow and speed,
  density = flow / speed), shipped in this package (``data/dataNew.npz``, MIT, provenance and MD5 in
  ``data/PROVENANCE.md``; :func:`load_lwr_npz` checks the MD5).
- Microscopic: a generated stand-in (``simulate.py``), since the official NGSIM pickles are not
  available; real NGSIM CSVs can be read from a folder the user supplies (``GDREPRO_TRAFFIC_DATA`` or
  the ``data_root`` setting). Nothing here downloads. CSV formats:

- NGSIM trajectories (``ngsim.csv``): the public NGSIM US-101 / I-80 CSV columns ``Vehicle_ID,
  Frame_ID, Local_Y, v_Length, v_Vel, v_Acc, Preceding`` (others ignored), feet and ft/s, 10 frames
  per second. Leader-follower pairs are joined on (Preceding, Frame_ID) and converted to metres.
- Loop detectors (``loop.csv``): ``detector_id, position_km, time_min, flow_veh_h, speed_km_h``, one
  row per detector and 5-minute interval (PeMS-style); density = flow / speed (veh/km).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from gdrepro.data import checked_file
from gdrepro.errors import GdreproError
from gdrepro.papers.traffic import simulate as S

FT = 0.3048
NGSIM_COLUMNS = ("Vehicle_ID", "Frame_ID", "Local_Y", "v_Length", "v_Vel", "v_Acc", "Preceding")
LOOP_COLUMNS = ("detector_id", "position_km", "time_min", "flow_veh_h", "speed_km_h")


LWR_NPZ = Path(__file__).parent / "data" / "dataNew.npz"
LWR_MD5 = "c4d8848dd4391a58277e05ff859489cd"
LWR_SPLITS = {"train": "train", "val": "validate", "test": "test"}


def load_lwr_npz(path: Path = LWR_NPZ, md5: str = LWR_MD5) -> dict[str, dict[str, np.ndarray]]:
    """The official macroscopic data set, split as released: {train, val, test} -> x, t, rho, u.

    X = (position, time) with position in miles (postmile) and time in minutes (5-minute steps);
    Y = (flow, speed). Returned: x (mi), t (h, so that rho_t + (rho u)_x = 0 holds in consistent
    units with u in mi/h), rho = flow / speed (as the official LWR-PINN script; speed > 0 in every
    row), u = speed. Raises if the file is missing or its MD5 differs from the committed copy's.
    """
    with np.load(checked_file(path, md5, "the official dataNew.npz")) as z:
        out = {}
        for name, key in LWR_SPLITS.items():
            X, Y = z[f"X_{key}"], z[f"Y_{key}"]
            out[name] = {"x": X[:, 0], "t": X[:, 1] / 60.0, "rho": Y[:, 0] / Y[:, 1], "u": Y[:, 1]}
    return out


def data_root(setting: str) -> Path:
    root = os.environ.get("GDREPRO_TRAFFIC_DATA") or setting
    if not root:
        raise GdreproError(
            "traffic paper scale needs real data: set GDREPRO_TRAFFIC_DATA to a folder with ngsim.csv "
            "(NGSIM trajectories, data.transportation.gov) and loop.csv (loop detectors, e.g. PeMS)"
        )
    return Path(root)


def _read_csv(path: Path, columns: tuple[str, ...], how: str) -> dict[str, np.ndarray]:
    if not path.exists():
        raise GdreproError(f"missing {path}: {how}")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise GdreproError(f"{path} lacks column(s) {', '.join(missing)}")
        rows = [[float(r[c]) for c in columns] for r in reader]
    if not rows:
        raise GdreproError(f"{path} has no rows")
    table = np.array(rows)
    return {c: table[:, i] for i, c in enumerate(columns)}


def load_ngsim_pairs(path: Path, min_steps: int = 100) -> dict[str, np.ndarray]:
    """Leader-follower pairs from an NGSIM CSV, as equal-length trajectories like simulate_pairs.

    Each follower's longest run of consecutive frames behind one leader becomes a pair, cut into
    windows of ``min_steps`` frames (0.1 s each); positions are the front bumpers' Local_Y, shifted
    so that dx = x_l - x_f - VEHICLE_LENGTH equals the NGSIM bumper-to-bumper gap.
    """
    t = _read_csv(path, NGSIM_COLUMNS, "download NGSIM trajectories (US-101 or I-80) as CSV")
    vid, frame = t["Vehicle_ID"].astype(np.int64), t["Frame_ID"].astype(np.int64)
    index = {(int(v), int(f)): i for i, (v, f) in enumerate(zip(vid, frame))}
    windows = {k: [] for k in ("x_l", "v_l", "x_f", "v_f", "a_f")}
    order = np.lexsort((frame, vid))
    start = 0
    while start < order.size:
        i0 = order[start]
        leader, run = int(t["Preceding"][i0]), [i0]
        j = start + 1
        while (j < order.size and vid[order[j]] == vid[i0] and int(t["Preceding"][order[j]]) == leader
               and frame[order[j]] == frame[run[-1]] + 1):
            run.append(order[j])
            j += 1
        start = j
        if leader == 0:
            continue
        lead = [index.get((leader, int(frame[i]))) for i in run]
        if None in lead:
            continue
        for w in range(0, len(run) - min_steps + 1, min_steps):
            f, ld = np.array(run[w : w + min_steps]), np.array(lead[w : w + min_steps])
            gap = (t["Local_Y"][ld] - t["v_Length"][ld] - t["Local_Y"][f]) * FT
            x_f = t["Local_Y"][f] * FT
            windows["x_f"].append(x_f)
            windows["x_l"].append(x_f + gap + S.VEHICLE_LENGTH)
            windows["v_l"].append(t["v_Vel"][ld] * FT)
            windows["v_f"].append(t["v_Vel"][f] * FT)
            windows["a_f"].append(t["v_Acc"][f] * FT)
    if not windows["x_f"]:
        raise GdreproError(f"{path}: no leader-follower pair with {min_steps} consecutive frames")
    return {k: np.array(v) for k, v in windows.items()}


def load_loop_detectors(path: Path) -> dict[str, np.ndarray]:
    """Loop-detector observations: position (km), time (h), density (veh/km), speed (km/h)."""
    t = _read_csv(path, LOOP_COLUMNS, "supply loop-detector data (detector_id,position_km,time_min,flow_veh_h,speed_km_h)")
    ok = t["speed_km_h"] > 0
    if not ok.any():
        raise GdreproError(f"{path}: no row with positive speed")
    return {
        "x": t["position_km"][ok],
        "t": t["time_min"][ok] / 60.0,
        "rho": t["flow_veh_h"][ok] / t["speed_km_h"][ok],
        "u": t["speed_km_h"][ok],
    }


def write_ngsim_csv(path: Path, pairs: dict[str, np.ndarray]) -> None:
    """Write pair trajectories in NGSIM's CSV format (leader and follower as separate vehicles)."""
    with path.open("w", newline="") as handle:
        w = csv.writer(handle, lineterminator="\n")
        w.writerow(NGSIM_COLUMNS)
        for p in range(pairs["x_f"].shape[0]):
            lead_id, foll_id = 2 * p + 1, 2 * p + 2
            for k in range(pairs["x_f"].shape[1]):
                w.writerow([lead_id, k + 1, pairs["x_l"][p, k] / FT, S.VEHICLE_LENGTH / FT, pairs["v_l"][p, k] / FT, 0.0, 0])
                w.writerow([foll_id, k + 1, pairs["x_f"][p, k] / FT, S.VEHICLE_LENGTH / FT, pairs["v_f"][p, k] / FT,
                            pairs["a_f"][p, k] / FT, lead_id])


def write_loop_csv(path: Path, obs: dict[str, np.ndarray]) -> None:
    """Write observations (x km, t h, rho veh/km, u km/h) in the loop-detector CSV format."""
    positions = {x: i for i, x in enumerate(np.unique(obs["x"]))}
    with path.open("w", newline="") as handle:
        w = csv.writer(handle, lineterminator="\n")
        w.writerow(LOOP_COLUMNS)
        for x, t, rho, u in zip(obs["x"], obs["t"], obs["rho"], obs["u"]):
            w.writerow([positions[x], x, t * 60.0, rho * u, u])


# --- simulated data --------------------------------------------------------------------------


def simulate_macro(settings, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Loop-detector observations of a Godunov LWR solution (Greenshields), with noise.

    Road [0, L] km, Gaussian bump on a light background (a shock and a rarefaction fan);
    ``detectors`` equally spaced detectors report density and speed every ``interval_s`` seconds
    with multiplicative noise. Also returns the solution on a coarse grid for the figures.
    """
    s = settings
    nx = 200
    dx = s.road_km / nx
    xc = (np.arange(nx) + 0.5) * dx
    rho0 = S.bump_initial_condition(xc, 25.0, 110.0, 0.3 * s.road_km, 0.08 * s.road_km)
    times, rho = S.godunov_lwr(rho0, dx, s.horizon_h, s.v_free, s.rho_max)
    det_x = (np.arange(s.detectors) + 0.5) * s.road_km / s.detectors
    obs_t = np.arange(0, s.horizon_h + 1e-12, s.interval_s / 3600.0)
    ti = np.clip(np.searchsorted(times, obs_t), 0, times.size - 1)
    xi = np.clip((det_x / dx).astype(int), 0, nx - 1)
    R = rho[ti][:, xi]  # (n_t, n_det)
    T, X = np.meshgrid(obs_t, det_x, indexing="ij")
    u_true = s.v_free * (1.0 - R / s.rho_max)
    noisy = lambda v: v * np.exp(s.macro_noise * rng.standard_normal(v.shape))  # noqa: E731
    grid_t = np.linspace(0, times[-1], 60)
    grid = rho[np.clip(np.searchsorted(times, grid_t), 0, times.size - 1)][:, ::4]
    return {
        "x": X.ravel(), "t": T.ravel(), "rho": noisy(R).ravel(), "u": noisy(u_true).ravel(),
        "grid_x": xc[::4], "grid_t": grid_t, "grid_rho": grid,
    }


def split(n: int, rng: np.random.Generator, fractions=(0.6, 0.2)) -> tuple[np.ndarray, ...]:
    """Random train / validation / test index split (60/20/20 as in the official code)."""
    perm = rng.permutation(n)
    a, b = int(fractions[0] * n), int((fractions[0] + fractions[1]) * n)
    return perm[:a], perm[a:b], perm[b:]


def micro_rows(pairs: dict[str, np.ndarray], sizes: dict[str, int], rng: np.random.Generator) -> dict[str, tuple]:
    """Disjoint random row sets (train / val / extra / test) from pair trajectories."""
    X, a = S.pair_rows(pairs)
    perm = rng.permutation(X.shape[0])
    out, start = {}, 0
    for name in ("train", "val", "extra", "test"):
        idx = perm[start : start + sizes[name]]
        if idx.size < sizes[name]:
            raise GdreproError(f"only {X.shape[0]} car-following rows, need {sum(sizes.values())}")
        out[name] = (X[idx], a[idx])
        start += sizes[name]
    return out
