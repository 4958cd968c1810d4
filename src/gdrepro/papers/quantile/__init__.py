"""quantile: Chen, Keilbar & Wu (2025), smoothed SGD for quantiles (declaration; code in experiment.py)."""

from gdrepro.paper import Figure, Paper

PAPER = Paper(
    slug="quantile",
    title="Smoothed SGD for quantiles: Bahadur representation and Gaussian approximation",
    citation="Chen, Keilbar & Wu (2025), arXiv:2505.13299",
    run_label="simulate",
    tables=("levels",),
    datasets={"quantile/truth.csv": "experiment:build_truth"},
    figures=(
        Figure("curves", "figures:draw_curves", claims=("C1-noncrossing", "C1-plain-crosses"),
               caption="Estimated quantile curves over 99 levels on one N(0,1) stream, at the checkpoint "
                       "where plain SGD crosses most, against the true quantiles; crossings of plain SGD marked."),
        Figure("crossings", "figures:draw_crossings", claims=("C1-noncrossing", "C1-plain-crosses"),
               caption="Share of adjacent level pairs out of order against the number of samples seen, "
                       "smoothed vs plain SGD (last iterate), 99 levels."),
        Figure("efficiency", "figures:draw_efficiency", claims=("C2-root-n", "C3-smoothing-free"),
               caption="RMSE of the averaged estimator over the theoretical standard deviation, per level, "
                       "smoothed and plain SGD; the claimed range shaded."),
        Figure("convergence", "figures:draw_convergence", claims=("C2-root-n",),
               caption="RMSE (mean over levels) of the averaged estimator against the sample size n, "
                       "with the root-n rate of the theory."),
        Figure("coverage", "figures:draw_coverage",
               claims=("C4-pointwise", "C4-pointwise-plugin", "S1-heavy-tail", "S2-extreme-levels"),
               caption="Coverage of pointwise 95% confidence intervals per level (true and plug-in density, "
                       "t3 stress test, extreme levels), with the Monte Carlo band around 0.95."),
        Figure("gaussian", "figures:draw_gaussian", claims=("C4-simultaneous",),
               caption="Histogram of the standardised errors of the averaged estimator, all levels pooled, "
                       "against the N(0,1) density of the Gaussian approximation."),
        Figure("tails", "figures:draw_tails", claims=("C5-tail-bound",),
               caption="Empirical tail P(|Z| > t) of the standardised error against the Gaussian limit "
                       "and the sub-Gaussian bound 2exp(-t^2/2)."),
    ),
)
