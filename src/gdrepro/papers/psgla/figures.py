"""The psgla figures, redrawn after the paper's: Fig. 1 (2-D samples and W2 vs iterations), the
imaging figure (PSNR of the MMSE vs iterations, restorations, posterior std maps) and a figure for
the stability theorem. Each ``draw_*`` fills a grid of axes from the evaluated results; curves
averaged over seeds carry their 95% t-interval over seeds as a band.
"""

from __future__ import annotations

import numpy as np

from gdrepro.plotting import PAPER_COLOR, reference_line
from gdrepro.verdicts import seed_interval

LABELS = {"pnp_ula": "PnP-ULA", "psgla": "PnP-PSGLA", "sgla": "SGLA (MYULA step)"}
IMG_LABELS = {"psgla": "PSGLA, TV prior", "sgla": "SGLA (MYULA step), TV prior",
              "psgla_gmm": "PnP-PSGLA, GMM patch prior", "pnp_ula": "PnP-ULA (paper's step), GMM patch prior"}
SHORT = {"psgla": "PSGLA-TV", "sgla": "SGLA-TV", "psgla_gmm": "PnP-PSGLA", "pnp_ula": "PnP-ULA"}
PAIRS = {"TV prior (ours)": ("psgla", "sgla"), "GMM patch prior (paper's pair)": ("psgla_gmm", "pnp_ula")}
CHECKPOINTS = {"psgla": "img_checkpoints", "sgla": "img_checkpoints", "psgla_gmm": "psgla_gmm_checkpoints",
               "pnp_ula": "pnp_checkpoints"}
# Paper's W2^2 at N = 1e4 (official figure), per prior.
PAPER_W2 = {
    "pnp_ula": {"symmetric": 24.09, "dissymmetric": 0.77, "cross": 3.63},
    "psgla": {"symmetric": 0.22, "dissymmetric": 0.63, "cross": 0.20},
}
# Paper's castle inpainting PSNRs (a different image from our camera stand-in): reference only.
PAPER_CASTLE = {"psgla": (28.09, "paper, castle (not our image): PSGLA-TV 28.09 dB at 1e3 it"),
                "psgla_gmm": (29.91, "paper, castle (not our image): PSGLA-DnCNN 29.91 dB at 1e4 it")}


def seed_band(ax, x, per_seed, style: str = "-", label: str | None = None, **kw):
    """Mean over seeds of ``per_seed`` (seeds x points) as a line with its 95% t-interval as a band."""
    values = np.asarray(per_seed, float)
    est = [seed_interval(values[:, j]) for j in range(values.shape[1])]
    mean = np.array([e.mean for e in est], float)
    line = ax.plot(x, mean, style, label=label, **kw)[0]
    if all(e.low is not None for e in est):
        ax.fill_between(x, [e.low for e in est], [e.high for e in est], color=line.get_color(), alpha=0.2, lw=0)
    return line


def legend_below(fig, axes, ncol: int = 3) -> None:
    """One legend for the figure, under the panels (off the data); duplicate labels merged."""
    handles = {}
    for ax in np.ravel(axes):
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    fig.legend(handles.values(), handles.keys(), loc="upper center", bbox_to_anchor=(0.5, -0.04), ncol=ncol,
               fontsize=7)


def draw_floors(ax, details, gi: int) -> None:
    """The noise floor of each W2^2 drawn (two exact samples of the compared size), per prior."""
    sizes = details["gmm_sizes"]
    for key, what, ls in (("w2", "chain path", "-."), ("ensemble", "law of $X_N$", ":"), ("large", "large path", "--")):
        floor = np.asarray(details["gmm_floor"][f"floor__{key}"])[gi].mean()
        ax.axhline(floor, color="0.5", lw=0.8, ls=ls, label=f"noise floor, {sizes[key]} points ({what})")


def draw_w2(axes, fig, details, names, metrics, **_) -> None:
    """W2^2 (1000-point subsample of one chain's path vs the exact posterior) against N, per prior,
    with its seed interval, the law of X_N (200 chains), the large-sample W2^2 at the final N (with
    its seed interval) and every distance's noise floor."""
    marks = details["gmm_checkpoints"]
    large = details["gmm_sizes"]["large"]
    for gi, name in enumerate(names):
        ax = axes[0, gi]
        draw_floors(ax, details, gi)
        for method, style, color in (("pnp_ula", "s--", "C1"), ("psgla", "o-", "C0")):
            curves = np.asarray(details["gmm_w2_curves_per_seed"][method])[:, :, gi]
            line = seed_band(ax, marks, curves, style, ms=3, color=color,
                             label=f"{LABELS[method]} (chain path, {details['gmm_sizes']['w2']} points)")
            ens = np.asarray(details["gmm"][f"{method}__ensemble"])[:, gi].mean(axis=1)
            ax.plot(marks, ens, ":", color=line.get_color(), lw=1, label=f"{LABELS[method]} (law of $X_N$)")
            est = seed_interval(metrics["metrics"][f"w2_large_{name}_{method}"]["per_seed"])
            err = None if est.low is None else [[est.mean - est.low], [est.high - est.mean]]
            ax.errorbar([marks[-1] * 1.25], [est.mean], yerr=err, fmt="D", ms=4, mfc="none", color=line.get_color(),
                        capsize=2, label=f"{LABELS[method]} ({large}-point path)")
            ax.plot([1e4 * 0.8], [PAPER_W2[method][name]], marker="*", ms=9, color=line.get_color(), mec=PAPER_COLOR,
                    ls="none", label=f"paper, {LABELS[method]}")
        ax.set(xscale="log", yscale="log", title=f"{name} prior", xlabel="iterations N")
        ax.title.set_fontsize(9)
        if gi == 0:
            ax.set_ylabel(r"$W_2^2$ to the posterior (mean of 3 $y$)")
    legend_below(fig, axes, ncol=2)


def draw_samples(axes, fig, first, priors, posterior, observed, names, details, **_) -> None:
    """Fig. 1: final chain-path samples of both samplers over the exact posterior, 3 priors x 3 y."""
    n = details["gmm_checkpoints"][-1]
    rng = np.random.default_rng(0)
    for gi, (prior, name) in enumerate(zip(priors, names)):
        for yi, y in enumerate(observed):
            ax = axes[gi, yi]
            post = posterior(prior, y)
            ref = post.sample(rng, 1000)
            ax.scatter(ref[:, 0], ref[:, 1], s=2, color="0.75", label="exact posterior", rasterized=True)
            for method, color in (("pnp_ula", "C1"), ("psgla", "C0")):
                pts = first["gmm"][method]["path"][str(n)][:, gi, yi, 0]
                ax.scatter(pts[:, 0], pts[:, 1], s=1.5, alpha=0.5, color=color, label=LABELS[method], rasterized=True)
            ax.plot(*y, "kx", ms=6, label="observation y")
            ax.set(xlim=(-8, 8), ylim=(-8, 8), aspect="equal")
            ax.tick_params(labelsize=7)
            ax.set_title(f"{name}, y = ({y[0]:g}, {y[1]:g})", fontsize=8)
            ax.label_outer()  # every panel spans [-8, 8]^2: tick labels on the outer panels only
    legend_below(fig, axes, ncol=4)
    for handle in fig.legends[0].legend_handles:
        if hasattr(handle, "set_sizes"):
            handle.set_sizes([12])


def draw_psnr(axes, fig, details, **_) -> None:
    """PSNR (dB) of the running-mean MMSE estimate against iterations, mean over seeds with its
    interval: top the TV pair (ours), bottom the learned-prior pair (the paper's comparison)."""
    per_seed = details["imaging_psnr_per_seed"]
    for ri, (pair_name, pair) in enumerate(PAIRS.items()):
        for pi, problem in enumerate(("inpainting", "deblurring")):
            ax = axes[ri, pi]
            for method, style in zip(pair, ("o-", "s--")):
                seed_band(ax, details[CHECKPOINTS[method]], per_seed[f"{problem}__{method}"], style, ms=3,
                          label=IMG_LABELS[method])
            reference_line(ax, details["observation_psnr"][problem], "observation")
            if problem == "inpainting" and pair[0] in PAPER_CASTLE:
                value, label = PAPER_CASTLE[pair[0]]
                ax.axhline(value, color=PAPER_COLOR, ls=":", lw=1, label=label)
            ax.set(xscale="log", xlabel="iterations", ylabel="PSNR (dB)")
            ax.set_title(f"{problem}, {pair_name}", fontsize=8)
    fig.subplots_adjust(hspace=0.45)
    legend_below(fig, axes, ncol=2)


def draw_restorations(axes, fig, details, first, truth, observations, **_) -> None:
    """Per problem two rows: ground truth, observation and the MMSE of the four samplers (seed 0);
    below, their posterior standard deviations on one colour scale with its colourbar."""
    methods = ("psgla", "sgla", "psgla_gmm", "pnp_ula")
    for pi, problem in enumerate(("inpainting", "deblurring")):
        top, bottom = axes[2 * pi], axes[2 * pi + 1]
        chains = {m: first["imaging"][problem][m]["chains"] for m in methods}
        images = [("ground truth", truth), (f"observation\n({problem})", observations[problem])]
        images += [(f"MMSE, {SHORT[m]}", chains[m]["mmse"][-1].mean(axis=0)) for m in methods]
        for ax, (title, img) in zip(top, images):
            ax.imshow(np.clip(img, 0, 1), cmap="gray", vmin=0, vmax=1)
            ax.set_title(title, fontsize=7)
        stds = {m: np.sqrt(chains[m]["var"].mean(axis=0)) for m in methods}
        vmax = max(float(np.quantile(s, 0.99)) for s in stds.values())
        for ax, m in zip(bottom[2:], methods):
            shown = ax.imshow(stds[m], cmap="magma", vmin=0, vmax=vmax)
            ax.set_title(f"std, {SHORT[m]}", fontsize=7)
        bottom[0].text(0.0, 0.5, "posterior standard\ndeviation of each\nsampler (one scale\nper problem)", fontsize=7,
                       transform=bottom[0].transAxes, va="center")
        cbar = fig.colorbar(shown, ax=list(bottom[2:]), fraction=0.03, pad=0.02)
        cbar.ax.tick_params(labelsize=7)
        cbar.set_label("posterior std", fontsize=7)
        for ax in (*top, *bottom):
            ax.axis("off")


def draw_stability(axes, fig, details, **_) -> None:
    """Left: W_p between ULA invariant laws against the drift perturbation size, one curve per seed,
    with the theorem's rate. Right: W1 / ||b1 - b2|| per seed (each seed its own perturbation
    direction): flat in the size (linear response), at a level set by the direction."""
    st = details["stability"]
    ax = axes[0, 0]
    allx = np.concatenate([np.asarray(v) for v in st["norm"]])
    for k, (norm, w1, w2) in enumerate(zip(st["norm"], st["w1"], st["w2"])):
        ax.loglog(norm, w2, "o-", ms=3, color="C0", alpha=0.7, label=r"$W_2$, one line per seed" if k == 0 else None)
        ax.loglog(norm, w1, "s--", ms=3, color="C1", alpha=0.7, label=r"$W_1$, one line per seed" if k == 0 else None)
    x = np.geomspace(allx.min(), allx.max(), 50)
    w2max = max(np.max(np.asarray(w) / np.sqrt(n)) for n, w in zip(st["norm"], st["w2"]))
    ax.loglog(x, w2max * np.sqrt(x), color=PAPER_COLOR, ls="--", lw=1,
              label=r"theorem's rate $\|b_1-b_2\|^{1/2}$ (through the largest ratio)")
    ax.set(xlabel=r"$\|b_1 - b_2\|_{L^2(\pi)}$", ylabel="distance of invariant laws")
    ax.set_title("Stability of ULA's invariant law (1-D double well)", fontsize=8)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    ax = axes[0, 1]
    for k, (norm, w1) in enumerate(zip(st["norm"], st["w1"])):
        ax.loglog(norm, np.asarray(w1) / np.asarray(norm), "s-", ms=3, color=f"C{k % 7}", label=f"seed {k}")
    ax.set(xlabel=r"$\|b_1 - b_2\|_{L^2(\pi)}$", ylabel=r"$W_1 / \|b_1 - b_2\|$")
    ax.set_title("W1 constant per perturbation direction", fontsize=8)
    fig.subplots_adjust(wspace=0.4)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
