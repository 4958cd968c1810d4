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
        ax.set(xscale="log", xlabel="LS physics weight c", ylabel=f"relative L2 error of {name}",
               title=f"Macroscopic LWR PINN, {name} ({n} seeds)")
    axes[0].legend(fontsize=7)


def draw_micro_rmse(axes, details, **_) -> None:
    """Held-out closed-loop position and speed RMSE per method, mean +- sd over the paired runs."""
    pts = details["micro_points"]
    labels = details["micro_labels"]
    for ax, key, unit in ((axes[0], "rmse_pos", "position RMSE (m)"), (axes[1], "rmse_vel", "speed RMSE (m/s)")):
        vals = np.array(pts[key])  # (runs, configs)
        x = np.arange(len(labels))
        ax.boxplot(vals, positions=x, widths=0.5, showfliers=False)
        ax.plot(x + np.zeros_like(vals), vals, ".", color="C0", alpha=0.4, ms=3)
        ax.set_xticks(x, [OTHER_STYLE.get(lab, (lab,))[0] for lab in labels], rotation=60, ha="right", fontsize=7)
        ax.set(ylabel=unit, title=f"Microscopic IDM-NN, {vals.shape[0]} paired runs")


def _pareto(ax, l_data, l_phys, labels, title) -> None:
    pts = np.stack([l_data, l_phys], 1)
    nd = non_dominated(pts)
    order = np.argsort(pts[nd, 0])
    ax.plot(pts[nd, 0][order], pts[nd, 1][order], "-", color="grey", lw=1, label="non-dominated front")
    for i, lab in enumerate(labels):
        name, marker = OTHER_STYLE.get(lab, (lab, "o"))
        color = "black" if lab.startswith("LS") else None
        ax.scatter(pts[i, 0], pts[i, 1], marker=marker, s=40 if nd[i] else 18, color=color,
                   edgecolors="red" if nd[i] else "none", linewidths=1.2,
                   label=name if not lab.startswith("LS") else None, zorder=3)
        if lab.startswith("LS"):
            ax.annotate(lab.removeprefix("LS "), pts[i], fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set(xscale="log", yscale="log", xlabel=r"data loss $L_{data}$ (train, normalised)",
           ylabel=r"physics loss $L_{phys}$", title=title)
    ax.legend(fontsize=6)


def draw_pareto_macro(ax, details, **_) -> None:
    """Final (data loss, physics loss) of every macroscopic run of seed 0; red edge = non-dominated."""
    p = details["macro_points"]
    _pareto(ax, np.array(p["l_data"][0]), np.array(p["l_phys"][0]), details["macro_labels"],
            "Macroscopic Pareto plot (seed 0)")


def draw_pareto_micro(ax, details, **_) -> None:
    """Final (data loss, physics loss) of every microscopic run of the first replicate."""
    p = details["micro_points"]
    _pareto(ax, np.array(p["l_data"][0]), np.array(p["l_phys"][0]), details["micro_labels"],
            "Microscopic Pareto plot (run 0)")


def draw_macro_field(axes, details, first, **_) -> None:
    """Godunov ground-truth density and the normalised-TMGD PINN reconstruction (seed 0)."""
    macro = first["macro"]
    if "grid_rho" not in macro:
        for ax in axes:
            ax.set_axis_off()
        return
    x, t = macro["grid_x"], macro["grid_t"] * 60
    j = details["macro_labels"].index("mgda_norm")
    extent = [x[0], x[-1], t[0], t[-1]]
    vmax = float(macro["grid_rho"].max())
    for ax, field, title in ((axes[0], macro["grid_rho"], "Godunov LWR (truth)"),
                             (axes[1], macro["grid_pred"][j], "PINN, TMGD normalised")):
        im = ax.imshow(field, origin="lower", aspect="auto", extent=extent, vmin=0, vmax=vmax, cmap="viridis")
        ax.set(xlabel="position (km)", ylabel="time (min)", title=title)
        ax.grid(False)
    axes[1].figure.colorbar(im, ax=axes[1], label="density (veh/km)")


def draw_micro_trajectory(ax, details, first, **_) -> None:
    """One held-out follower's speed: truth, leader, and closed-loop simulations of some methods."""
    labels = details["micro_labels"]
    micro = first["micro"]
    t = np.arange(micro["traj_true_v"].size) * 0.1
    ax.plot(t, micro["traj_lead_v"], color="grey", lw=1, label="leader")
    ax.plot(t, micro["traj_true_v"], color="black", lw=1.5, label="follower (truth)")
    for lab in ("LS a=0.9", "mgda", "dcgd_proj"):
        if lab in labels:
            ax.plot(t, micro["traj_sim_v"][labels.index(lab)], lw=1, label=OTHER_STYLE.get(lab, (lab,))[0])
    ax.set(xlabel="time (s)", ylabel="speed (m/s)", title="Closed-loop simulation, held-out trajectory")
    ax.legend(fontsize=7)

