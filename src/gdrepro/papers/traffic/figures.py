"""The traffic figures. Each ``draw_*`` fills its axes from metrics.json and seed 0's results (``first``).

The paper's figures are error comparisons of LS against the multi-gradient methods (macro and
micro), Pareto plots of (data loss, physics loss) and trajectory / field reconstructions; the
paper's numbers were not available to us, so no reference values are drawn.
"""

from __future__ import annotations

import numpy as np

from gdrepro.papers.traffic.objectives import non_dominated

OTHER_STYLE = {"mgda": ("TMGD raw", "s"), "mgda_norm": ("TMGD normalised", "D"), "dcgd_proj": ("DCGD proj", "^"),
               "dcgd_avg": ("DCGD avg", "v"), "dcgd_center": ("DCGD center", "P"),
               "mgda_norm official patience": ("official TMGD (patience 350)", "X")}


def _name(label: str) -> str:
    """Readable name of a configuration label ("LS a=0.9" -> "LS a = 0.9", "mgda" -> "TMGD raw")."""
    return OTHER_STYLE[label][0] if label in OTHER_STYLE else label.replace("=", " = ")


def _ls_value(label: str) -> float:
    return float(label.split("=")[1])


def draw_macro_errors(axes, details, **_) -> None:
    """Relative L2 test error of density and speed: LS over the physics weight c vs the MGDAs."""
    rows = {r["method"]: r for r in details["macro"]}
    ls = [r for lab, r in rows.items() if lab.startswith("LS")]
    c = [_ls_value(r["method"]) for r in ls]
    n = len(details["macro_points"]["err_rho"])
    for ax, key, name in ((axes[0], "err_rho", "density"), (axes[1], "err_u", "speed")):
        ax.errorbar(c, [r[key] for r in ls], [r[key + "_sd"] for r in ls], fmt="o-", color="black", ms=3,
                    capsize=2, label="LS (100, c, 100)")
        for i, (m, (lab, _)) in enumerate(OTHER_STYLE.items()):
            if m in rows:
                ax.axhline(rows[m][key], color=f"C{i}", ls="--", lw=1.2, label=lab)
        ax.set(xscale="log", xlabel="LS physics weight c", ylabel=f"relative L2 test error of {name}")
        ax.set_title(f"{name}, dataNew.npz (mean ± sd, {n} seeds)", fontsize=8)
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)


def draw_micro_rmse(axes, details, **_) -> None:
    """Held-out closed-loop position and speed RMSE per method over the paired runs: the best
    validation iterate (top row) and the last iterate (bottom row, as the official code evaluates)."""
    pts = details["micro_points"]
    labels = details["micro_labels"]
    names = [_name(lab) for lab in labels]
    for row, (suffix, when) in enumerate((("", "best validation iterate"), ("_last", "last iterate"))):
        for ax, key, unit in ((axes[row, 0], "rmse_pos", "position RMSE (m)"), (axes[row, 1], "rmse_vel", "speed RMSE (m/s)")):
            vals = np.array(pts[key + suffix])  # (runs, configs)
            x = np.arange(len(labels))
            ax.boxplot(vals, positions=x, widths=0.5, showfliers=False)
            ax.plot(x + np.zeros_like(vals), vals, ".", color="C0", alpha=0.4, ms=3)
            ax.set_xticks(x, names if row == 1 else [], rotation=60, ha="right", fontsize=7)
            ax.set_ylabel(unit, fontsize=8)
            ax.set_title(f"{when}, {vals.shape[0]} paired runs", fontsize=8)
    axes[0, 0].figure.suptitle("Microscopic NN car following on the generated stand-in (not NGSIM)", fontsize=9)


def _log_or_linear(ax, axis: str, values: np.ndarray) -> None:
    """Log scale when the values span more than a decade, else linear with plain tick labels (a
    narrow log axis labels its minor ticks, which overlap)."""
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    v = np.asarray(values)
    v = v[np.isfinite(v) & (v > 0)]
    target = ax.xaxis if axis == "x" else ax.yaxis
    if v.size and v.max() / v.min() > 10:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
        return
    fmt = ScalarFormatter(useMathText=True)
    fmt.set_powerlimits((-2, 3))
    target.set_major_locator(MaxNLocator(4))
    target.set_major_formatter(fmt)


def _pareto(ax, l_data, l_phys, labels, title, legend: bool) -> None:
    pts = np.stack([l_data, l_phys], 1)
    nd = non_dominated(pts)
    order = np.argsort(pts[nd, 0])
    ax.plot(pts[nd, 0][order], pts[nd, 1][order], "-", color="grey", lw=1, label="non-dominated front")
    for i, lab in enumerate(labels):
        name, marker = OTHER_STYLE.get(lab, ("LS", "o"))
        color = "black" if lab.startswith("LS") else None
        ax.scatter(pts[i, 0], pts[i, 1], marker=marker, s=40 if nd[i] else 18, color=color,
                   edgecolors="red" if nd[i] else "none", linewidths=1.2,
                   label=name if not lab.startswith("LS") or lab == labels[0] else None, zorder=3)
        if lab.startswith("LS"):
            ax.annotate(lab.removeprefix("LS "), pts[i], fontsize=7, xytext=(3, 3), textcoords="offset points")
    _log_or_linear(ax, "x", pts[:, 0])
    _log_or_linear(ax, "y", pts[:, 1])
    ax.set_xlabel(r"data loss $L_{data}$ (train, normalised)", fontsize=8)
    ax.set_ylabel(r"physics loss $L_{phys}$", fontsize=8)
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=7)
    if legend:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)


def _pareto_pair(axes, points, labels, what) -> None:
    for ax, suffix, when in ((axes[0], "", "best validation iterate"), (axes[1], "_last", "last iterate")):
        _pareto(ax, np.array(points["l_data" + suffix][0]), np.array(points["l_phys" + suffix][0]), labels,
                f"{what}: {when}", legend=ax is axes[1])


def draw_pareto_macro(axes, details, **_) -> None:
    """(data loss, physics loss) of every macroscopic run of seed 0 at its best validation iterate
    and at its last iterate; red edge = non-dominated."""
    _pareto_pair(axes, details["macro_points"], details["macro_labels"], "Macro (dataNew.npz), seed 0")


def draw_pareto_micro(axes, details, **_) -> None:
    """The same for the first paired microscopic run (generated stand-in)."""
    _pareto_pair(axes, details["micro_points"], details["micro_labels"], "Micro (stand-in), run 0")


def draw_macro_field(axes, details, first, **_) -> None:
    """Observed density (all rows of dataNew.npz, averaged in time bins; white where no row) and the
    normalised-TMGD PINN reconstruction of seed 0 at the bins' centres, over detector position and time."""
    macro = first["macro"]
    x, t = macro["grid_x"], macro["grid_t"]
    j = details["macro_labels"].index("mgda_norm")
    extent = [x[0], x[-1], t[0], t[-1]]
    vmax = float(np.nanpercentile(macro["grid_rho"], 99.5))
    for ax, field, title in ((axes[0], macro["grid_rho"], "observed (loop detectors)"),
                             (axes[1], macro["grid_pred"][j], "PINN, TMGD normalised (seed 0)")):
        im = ax.imshow(field, origin="lower", aspect="auto", extent=extent, vmin=0, vmax=vmax, cmap="viridis",
                       interpolation="nearest")
        ax.set_xlabel("position (postmile)", fontsize=8)
        ax.set_ylabel("time (h)", fontsize=8)
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(False)
    axes[1].figure.colorbar(im, ax=axes[1], label="density = flow / speed")


def draw_micro_trajectory(ax, details, first, **_) -> None:
    """One held-out follower's speed: truth, leader, and closed-loop simulations of some methods."""
    labels = details["micro_labels"]
    micro = first["micro"]
    t = np.arange(micro["traj_true_v"].size) * 0.1
    ax.plot(t, micro["traj_lead_v"], color="grey", lw=1, label="leader")
    ax.plot(t, micro["traj_true_v"], color="black", lw=1.5, label="follower (recorded)")
    for lab in ("LS a=0.9", "mgda", "mgda_norm", "dcgd_proj"):
        if lab in labels:
            ax.plot(t, micro["traj_sim_v"][labels.index(lab)], lw=1, label=_name(lab))
    ax.set(xlabel="time (s)", ylabel="speed (m/s)",
           title="Closed-loop simulation of a held-out follower (generated stand-in, seed 0)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
