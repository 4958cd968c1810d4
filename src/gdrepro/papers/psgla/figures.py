"""The psgla figures, redrawn after the paper's: Fig. 1 (2-D samples and W2 vs iterations), the
imaging figure (PSNR of the MMSE vs iterations, restorations, posterior std maps) and a figure for
the stability theorem. Each ``draw_*`` fills a grid of axes from the evaluated results.
"""

from __future__ import annotations

import numpy as np

from gdrepro.plotting import PAPER_COLOR, reference_line

LABELS = {"pnp_ula": "PnP-ULA", "psgla": "PnP-PSGLA", "sgla": "SGLA (MYULA step)"}
IMG_LABELS = {"psgla": "PSGLA (TV prox)", "sgla": "SGLA (TV Moreau envelope, MYULA step)"}
# Paper's W2^2 at N = 1e4 (official figure), per prior.
PAPER_W2 = {
    "pnp_ula": {"symmetric": 24.09, "dissymmetric": 0.77, "cross": 3.63},
    "psgla": {"symmetric": 0.22, "dissymmetric": 0.63, "cross": 0.20},
}


def draw_floors(ax, details, gi: int) -> None:
    """The noise floor of each W2^2 drawn (two exact samples of the compared size), per prior."""
    sizes = details["gmm_sizes"]
    for key, what, ls in (("w2", "chain path", "-."), ("ensemble", "law of $X_N$", ":"), ("large", "large path", "--")):
        floor = np.asarray(details["gmm_floor"][f"floor__{key}"])[gi].mean()
        ax.axhline(floor, color="0.5", lw=0.8, ls=ls, label=f"noise floor, {sizes[key]} points ({what})")


def draw_w2(axes, fig, details, names, **_) -> None:
    """W2^2 (1000-point subsample of one chain's path vs the exact posterior) against N, per prior,
    with the large-sample W2^2 at the final N and every distance's noise floor."""
    marks = details["gmm_checkpoints"]
    for gi, name in enumerate(names):
        ax = axes[0, gi]
        draw_floors(ax, details, gi)
        for method, style in (("pnp_ula", "s--"), ("psgla", "o-")):
            w2 = np.asarray(details["gmm"][f"{method}__w2"])[:, gi].mean(axis=1)
            ens = np.asarray(details["gmm"][f"{method}__ensemble"])[:, gi].mean(axis=1)
            line = ax.loglog(marks, w2, style, ms=3, label=f"{LABELS[method]} (chain path)")[0]
            ax.loglog(marks, ens, ":", color=line.get_color(), lw=1, label=f"{LABELS[method]} (law of $X_N$)")
            large = np.asarray(details["gmm"][f"{method}__w2_large"])[gi].mean()
            ax.plot([marks[-1]], [large], "D", ms=4, mfc="none", color=line.get_color(),
                    label=f"{LABELS[method]} ({details['gmm_sizes']['large']}-point path)")
            ax.plot([1e4], [PAPER_W2[method][name]], marker="*", ms=9, color=line.get_color(), mec=PAPER_COLOR,
                    ls="none", label=f"paper, {LABELS[method]}")
        ax.set(title=f"{name} prior", xlabel="iterations N")
        if gi == 0:
            ax.set_ylabel(r"$W_2^2$ to the posterior (mean of 3 $y$)")
    axes[0, -1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))  # off the data


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
            ax.plot(*y, "kx", ms=6)
            ax.set(xlim=(-8, 8), ylim=(-8, 8), aspect="equal")
            ax.set_title(f"{name}, y = ({y[0]:g}, {y[1]:g})", fontsize=8)
    axes[0, 0].legend(fontsize=6, markerscale=3, loc="lower right")


def draw_psnr(axes, fig, details, **_) -> None:
    """PSNR and SSIM of the running-mean MMSE estimate against iterations, both problems."""
    marks = details["img_checkpoints"]
    for pi, problem in enumerate(("inpainting", "deblurring")):
        for mi, metric in enumerate(("psnr", "ssim")):
            ax = axes[mi, pi]
            for method, style in (("psgla", "o-"), ("sgla", "s--")):
                ax.semilogx(marks, details["imaging"][f"{problem}__{method}"][metric], style, ms=3,
                            label=IMG_LABELS[method])
            if metric == "psnr":
                reference_line(ax, details["observation_psnr"][problem], "observation")
                if problem == "inpainting":
                    ax.axhline(28.09, color=PAPER_COLOR, ls=":", lw=1, label="paper: PSGLA-TV, castle, 1e3 it")
                ax.set_title(f"{problem}: MMSE estimate")
            ax.set(xlabel="iterations", ylabel=metric.upper())
            ax.legend(fontsize=6)


def draw_restorations(axes, fig, details, first, truth, observations, **_) -> None:
    """Truth, observation, MMSE and posterior std of both samplers (seed 0), both problems."""
    for pi, problem in enumerate(("inpainting", "deblurring")):
        panels = [("ground truth", truth, "gray"), ("observation", observations[problem], "gray")]
        chains = {method: first["imaging"][problem][method]["chains"] for method in ("psgla", "sgla")}
        for method in ("psgla", "sgla"):
            panels.append((f"MMSE, {IMG_LABELS[method].split(' ')[0]}", chains[method]["mmse"][-1].mean(axis=0), "gray"))
        for method in ("psgla", "sgla"):
            std = np.sqrt(chains[method]["var"].mean(axis=0))
            panels.append((f"posterior std, {IMG_LABELS[method].split(' ')[0]}", std, "magma"))
        for ci, (title, img, cmap) in enumerate(panels):
            ax = axes[pi, ci]
            kw = {"vmin": 0, "vmax": 1} if cmap == "gray" else {}
            ax.imshow(np.clip(img, 0, 1) if cmap == "gray" else img, cmap=cmap, **kw)
            ax.set_title(f"{title}" + (f"\n{problem}" if ci == 0 else ""), fontsize=7)
            ax.axis("off")


def draw_stability(axes, fig, details, **_) -> None:
    """W_p between ULA invariant laws against the drift perturbation size, one curve per seed."""
    st = details["stability"]
    ax = axes[0, 0]
    allx = np.concatenate([np.asarray(v) for v in st["norm"]])
    for k, (norm, w1, w2) in enumerate(zip(st["norm"], st["w1"], st["w2"])):
        ax.loglog(norm, w2, "o-", ms=3, color="C0", alpha=0.7, label=r"$W_2$" if k == 0 else None)
        ax.loglog(norm, w1, "s--", ms=3, color="C1", alpha=0.7, label=r"$W_1$" if k == 0 else None)
    x = np.geomspace(allx.min(), allx.max(), 50)
    w2max = max(np.max(np.asarray(w) / np.sqrt(n)) for n, w in zip(st["norm"], st["w2"]))
    ax.loglog(x, w2max * np.sqrt(x), color=PAPER_COLOR, ls="--", lw=1, label=r"theorem's rate $\|b_1-b_2\|^{1/2}$")
    ax.set(xlabel=r"$\|b_1 - b_2\|_{L^2(\pi)}$", ylabel="distance of invariant laws",
           title="Stability of ULA's invariant law (1-D double well)")
    ax.legend()
