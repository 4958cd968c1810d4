"""Ground-truth generators for the traffic paper (numpy, vectorised): Godunov LWR and IDM platoons.

The paper trains on real loop-detector data (macroscopic) and NGSIM car pairs (microscopic);
neither can be downloaded here, so we simulate data with the same structure and the same
physics the PINNs encode, with the physics deliberately *misspecified* in the microscopic case
(per-driver parameters and acceleration noise), as with real drivers.
"""

from __future__ import annotations

import numpy as np

# IDM nominal parameters (v0 m/s, T s, s0 m, a m/s^2, b m/s^2), shared/papers/traffic.md
IDM_NOMINAL = np.array([30.0, 1.5, 2.0, 0.73, 1.67])
VEHICLE_LENGTH = 5.0  # m; gaps dx are bumper to bumper
DT = 0.1  # s, the paper's closed-loop step (v += 0.1 a)


# --- macroscopic: LWR with Greenshields flux, Godunov scheme --------------------------------


def greenshields_flux(rho: np.ndarray, v_free: float, rho_max: float) -> np.ndarray:
    """q(rho) = v_f rho (1 - rho / rho_m) (Greenshields fundamental diagram)."""
    return v_free * rho * (1.0 - rho / rho_max)


def godunov_lwr(
    rho0: np.ndarray,
    dx: float,
    t_end: float,
    v_free: float,
    rho_max: float,
    cfl: float = 0.9,
) -> tuple[np.ndarray, np.ndarray]:
    """Solve rho_t + q(rho)_x = 0 by Godunov's scheme with transmissive boundaries.

    Interface flux F_{i+1/2} = min(D(rho_i), S(rho_{i+1})) with demand D(r) = q(min(r, r_c)) and
    supply S(r) = q(max(r, r_c)), r_c = rho_m / 2 (the cell-transmission form of Godunov's flux for
    a concave flux). dt = cfl * dx / v_f (CFL <= 1). Returns (times (n_t,), rho (n_t, n_x)).
    ``rho0`` may carry leading batch axes (..., n_x): several initial conditions at once.
    """
    rho0 = np.asarray(rho0, dtype=float)
    dt = cfl * dx / v_free
    steps = int(np.ceil(t_end / dt))
    rc = rho_max / 2.0
    out = np.empty((steps + 1, *rho0.shape))
    rho = rho0.copy()
    out[0] = rho
    for k in range(steps):
        padded = np.concatenate([rho[..., :1], rho, rho[..., -1:]], axis=-1)  # zero-gradient ghost cells
        demand = greenshields_flux(np.minimum(padded[..., :-1], rc), v_free, rho_max)
        supply = greenshields_flux(np.maximum(padded[..., 1:], rc), v_free, rho_max)
        flux = np.minimum(demand, supply)  # (..., n_x + 1) interface fluxes
        rho = rho - dt / dx * (flux[..., 1:] - flux[..., :-1])
        out[k + 1] = rho
    return np.arange(steps + 1) * dt, out


def bump_initial_condition(x: np.ndarray, base: float, peak: float, centre: float, width: float) -> np.ndarray:
    """Gaussian density bump on a uniform background: a shock forms upstream-facing, a fan downstream."""
    return base + (peak - base) * np.exp(-0.5 * ((x - centre) / width) ** 2)


# --- microscopic: IDM car following ------------------------------------------------------------


def idm_acceleration(dx: np.ndarray, dv: np.ndarray, v: np.ndarray, params: np.ndarray) -> np.ndarray:
    """IDM: a [1 - (v/v0)^4 - (s*/dx)^2], s* = s0 + v T - v dv / (2 sqrt(a b)), dv = v_lead - v.

    ``params`` (..., 5) = (v0, T, s0, a, b), broadcast against the state arrays. Works on numpy
    arrays and torch tensors alike. s* is floored at s0 (the usual max(0, .) guard, raised to s0
    so that a fast-closing leader never makes s* vanish).
    """
    v0, T, s0, a, b = (params[..., i] for i in range(5))
    s_star = s0 + v * T - v * dv / (2.0 * (a * b) ** 0.5)
    s_star = s_star.clip(min=s0) if hasattr(s_star, "clip") else np.maximum(s_star, s0)
    return a * (1.0 - (v / v0) ** 4 - (s_star / dx) ** 2)


def ou_leader_speed(
    rng: np.random.Generator, n: int, steps: int, mean: np.ndarray, theta: float = 0.08, sigma: float = 1.6
) -> np.ndarray:
    """Leader speeds (n, steps): Ornstein-Uhlenbeck around ``mean`` (n,), clipped to [0, 30] m/s."""
    v = np.empty((n, steps))
    v[:, 0] = mean
    noise = rng.standard_normal((n, steps - 1)) * sigma * np.sqrt(DT)
    for k in range(steps - 1):
        v[:, k + 1] = np.clip(v[:, k] + theta * (mean - v[:, k]) * DT + noise[:, k], 0.0, 30.0)
    return v


def equilibrium_gap(v: np.ndarray, params: np.ndarray) -> np.ndarray:
    """IDM steady-state gap s_e(v) = (s0 + v T) / sqrt(1 - (v/v0)^4)."""
    v0, T, s0 = params[..., 0], params[..., 1], params[..., 2]
    return (s0 + v * T) / np.sqrt(np.maximum(1.0 - (v / v0) ** 4, 1e-3))


def follow(
    x_lead: np.ndarray,
    v_lead: np.ndarray,
    x0: np.ndarray,
    v0: np.ndarray,
    accel,
    min_gap: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closed-loop follower: a_k = accel(dx, dv, v, k); v += DT a (v >= 0); x += DT v; gap >= min_gap.

    Leader arrays are (..., steps); x0, v0 broadcast to their batch shape. Returns follower
    positions, speeds and the realised accelerations (..., steps) (a_k = (v_{k+1} - v_k)/DT, the
    last one repeated). ``accel`` is any vectorised callable; gaps never go negative.
    """
    steps = x_lead.shape[-1]
    x = np.empty(x_lead.shape)
    v = np.empty(x_lead.shape)
    x[..., 0], v[..., 0] = x0, v0
    for k in range(steps - 1):
        dx = np.maximum(x_lead[..., k] - x[..., k] - VEHICLE_LENGTH, min_gap)
        a = accel(dx, v_lead[..., k] - v[..., k], v[..., k], k)
        v[..., k + 1] = np.maximum(v[..., k] + DT * a, 0.0)
        x[..., k + 1] = np.minimum(x[..., k] + DT * v[..., k + 1], x_lead[..., k + 1] - VEHICLE_LENGTH - min_gap)
    realised = np.empty(x_lead.shape)
    realised[..., :-1] = np.diff(v, axis=-1) / DT
    realised[..., -1] = realised[..., -2]
    return x, v, realised


def simulate_pairs(
    rng: np.random.Generator,
    n_pairs: int,
    seconds: float = 60.0,
    heterogeneity: float = 0.15,
    noise: float = 0.3,
    idm: np.ndarray = IDM_NOMINAL,
) -> dict[str, np.ndarray]:
    """Leader-follower pairs: OU leader speed, IDM followers with per-driver log-normal parameters.

    Each driver's (v0, T, s0, a, b) is ``idm * exp(heterogeneity * N(0, 1))``; its acceleration gets
    AR(1) noise (sd ``noise`` m/s^2, correlation 0.9 per 0.1 s), so IDM is a misspecified model of
    the data. Followers start at the equilibrium gap. Returns arrays (n_pairs, steps): x_l, v_l,
    x_f, v_f, a_f (realised) and the drivers' params (n_pairs, 5).
    """
    steps = int(round(seconds / DT)) + 1
    params = idm * np.exp(heterogeneity * rng.standard_normal((n_pairs, 5)))
    v_l = ou_leader_speed(rng, n_pairs, steps, mean=rng.uniform(6.0, 20.0, n_pairs))
    x_l = np.concatenate([np.zeros((n_pairs, 1)), np.cumsum(v_l[:, 1:] * DT, axis=1)], axis=1) + 200.0
    v_f0 = v_l[:, 0]
    x_f0 = x_l[:, 0] - VEHICLE_LENGTH - equilibrium_gap(v_f0, params)
    eps = rng.standard_normal((n_pairs, steps))
    ar = np.empty((n_pairs, steps))
    ar[:, 0] = eps[:, 0]
    for k in range(1, steps):
        ar[:, k] = 0.9 * ar[:, k - 1] + np.sqrt(1 - 0.81) * eps[:, k]
    ar *= noise

    def driver(dx, dv, v, k):
        return np.clip(idm_acceleration(dx, dv, v, params) + ar[:, k], -9.0, 4.0)

    x_f, v_f, a_f = follow(x_l, v_l, x_f0, v_f0, driver)
    return {"x_l": x_l, "v_l": v_l, "x_f": x_f, "v_f": v_f, "a_f": a_f, "params": params}


def pair_rows(pairs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Car-following rows X = (dx, dv, v_f) and targets a_f from pair trajectories (all time steps)."""
    dx = pairs["x_l"] - pairs["x_f"] - VEHICLE_LENGTH
    dv = pairs["v_l"] - pairs["v_f"]
    X = np.stack([dx, dv, pairs["v_f"]], axis=-1).reshape(-1, 3)
    return X, pairs["a_f"].reshape(-1)


# --- microscopic stand-in for NGSIM: drivers the IDM does not describe ------------------------------

HELLY_NOMINAL = np.array([0.7, 0.1, 1.4, 2.5])  # (C1 1/s, C2 1/s^2, T s, s0 m): Helly's linear model


def helly_acceleration(dx: np.ndarray, dv: np.ndarray, v: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Helly (1959) linear car following: a = C1 dv + C2 (dx - s0 - T v), params (..., 4) = (C1, C2, T, s0)."""
    c1, c2, T, s0 = (params[..., i] for i in range(4))
    return c1 * dv + c2 * (dx - s0 - T * v)


def simulate_standin_pairs(
    rng: np.random.Generator,
    n_pairs: int,
    seconds: float = 60.0,
    heterogeneity: float = 0.15,
    noise: float = 0.3,
    delay_s: tuple[float, float] = (0.2, 0.6),
    helly_share: float = 0.5,
    position_noise: float = 0.1,
    speed_noise: float = 0.1,
    accel_noise: float = 0.2,
) -> dict[str, np.ndarray]:
    """A generated stand-in for NGSIM car pairs, in which the IDM physics is misspecified.

    Not real data. Four departures from the IDM the PINN's physics term assumes, each a known
    feature of real trajectories:

    - heterogeneous drivers: per-driver parameters ``nominal * exp(heterogeneity * N(0, 1))``;
    - a misspecified model: a share ``helly_share`` of drivers follow Helly's linear model
      (:func:`helly_acceleration`), the others the IDM;
    - reaction delay: each driver reacts to the (gap, speed difference, speed) of ``tau`` seconds
      ago, tau ~ U(delay_s), plus AR(1) acceleration noise (sd ``noise``, as :func:`simulate_pairs`);
    - measurement noise: the recorded positions, speeds and accelerations carry i.i.d. Gaussian
      errors (sd ``position_noise`` m, ``speed_noise`` m/s, ``accel_noise`` m/s^2), as a detector
      or video extraction would; the true motion is never seen.

    Returns the recorded arrays (n_pairs, steps) x_l, v_l, x_f, v_f, a_f like :func:`simulate_pairs`,
    plus the drivers' ``kind`` (1 = Helly) and ``delay`` (s).
    """
    steps = int(round(seconds / DT)) + 1
    idm = IDM_NOMINAL * np.exp(heterogeneity * rng.standard_normal((n_pairs, 5)))
    helly = HELLY_NOMINAL * np.exp(heterogeneity * rng.standard_normal((n_pairs, 4)))
    kind = rng.random(n_pairs) < helly_share
    lag = np.round(rng.uniform(*delay_s, n_pairs) / DT).astype(int)
    v_l = ou_leader_speed(rng, n_pairs, steps, mean=rng.uniform(6.0, 20.0, n_pairs))
    x_l = np.concatenate([np.zeros((n_pairs, 1)), np.cumsum(v_l[:, 1:] * DT, axis=1)], axis=1) + 200.0
    gap0 = np.where(kind, helly[:, 3] + helly[:, 2] * v_l[:, 0], equilibrium_gap(v_l[:, 0], idm))
    ar = _ar1(rng, n_pairs, steps) * noise
    history = np.empty((n_pairs, steps, 3))
    rows = np.arange(n_pairs)

    def driver(dx, dv, v, k):
        history[:, k] = np.stack([dx, dv, v], axis=-1)
        seen = history[rows, np.maximum(k - lag, 0)]  # the state tau seconds ago
        a = np.where(kind, helly_acceleration(*seen.T, helly), idm_acceleration(*seen.T, idm))
        return np.clip(a + ar[:, k], -9.0, 4.0)

    x_f, v_f, a_f = follow(x_l, v_l, x_l[:, 0] - VEHICLE_LENGTH - gap0, v_l[:, 0], driver)
    seen = lambda a, sd: a + sd * rng.standard_normal(a.shape)  # noqa: E731
    speed = lambda v: np.maximum(seen(v, speed_noise), 0.0)  # noqa: E731  (recorded speeds are >= 0)
    return {"x_l": seen(x_l, position_noise), "v_l": speed(v_l), "x_f": seen(x_f, position_noise), "v_f": speed(v_f),
            "a_f": seen(a_f, accel_noise), "kind": kind.astype(float),
            "delay": lag * DT}


def _ar1(rng: np.random.Generator, n: int, steps: int, rho: float = 0.9) -> np.ndarray:
    """Unit-variance AR(1) noise (n, steps) with lag-one correlation ``rho``."""
    eps = rng.standard_normal((n, steps))
    ar = np.empty((n, steps))
    ar[:, 0] = eps[:, 0]
    for k in range(1, steps):
        ar[:, k] = rho * ar[:, k - 1] + np.sqrt(1 - rho**2) * eps[:, k]
    return ar
