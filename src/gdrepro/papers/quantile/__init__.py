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
        Figure("curves", "figures:draw_curves", size=(5.4, 3.0),
               claims=("C1-noncrossing", "C1-plain-crosses", "C1-plain-crosses-stream"),
               caption="Estimated quantile curves over 99 levels on one N(0,1) stream, at the checkpoint "
                       "where plain SGD crosses most, against the true quantiles; crossings of plain SGD marked."),
        Figure("crossings", "figures:draw_crossings", size=(4.9, 2.8),
               claims=("C1-noncrossing", "C1-plain-crosses", "C1-plain-crosses-stream"),
               caption="Share of adjacent level pairs out of order against the number of samples seen, "
                       "smoothed vs plain SGD (last iterate), 99 levels; mean over seeds with its 95% interval."),
        Figure("efficiency", "figures:draw_efficiency", grid=(1, 2), size=(7.0, 3.3),
               claims=("C2-root-n", "C3-smoothing-free", "S3-smoothing-small-n"),
               caption="Left: RMSE of the averaged estimator over the theoretical standard deviation per level "
                       "at n, smoothed and plain SGD, with C2's range. Right: smoothed / plain RMSE of the "
                       "averaged estimators on the same streams against the samples seen (mean over levels with "
                       "its 95% interval over seeds; the range over levels shaded), with C3's range."),
        Figure("convergence", "figures:draw_convergence", size=(4.8, 3.4),
               claims=("C2-root-n", "C5-rate-last", "C5-rate-average"),
               caption="RMSE (mean over levels) of the averaged and the un-averaged iterate against the sample "
                       "size, smoothed (solid) and plain (dashed) SGD, 95% intervals over seeds, with the "
                       "theoretical scales n^-1/2 and sqrt(gamma_n); the rates are fitted over the shaded "
                       "range [n/100, n]."),
        Figure("coverage", "figures:draw_coverage", grid=(1, 2), size=(7.0, 3.4),
               claims=("C4-pointwise", "C4-pointwise-plugin", "S1-heavy-tail", "S2-extreme-levels",
                       "S2-extreme-levels-true-start"),
               caption="Coverage of pointwise 95% confidence intervals. Left: per level on N(0,1) with the true "
                       "and the plug-in density, and the binomial band around 0.95. Right: stress tests, t3 "
                       "streams per level and the extreme levels 0.01, 0.99 started at 0 and at the true "
                       "quantile (binomial 95% error bars)."),
        Figure("gaussian", "figures:draw_gaussian", size=(5.4, 3.0), claims=("C4-simultaneous",),
               caption="Histogram of the standardised errors of the averaged estimator, all levels pooled, "
                       "against the N(0,1) density of the Gaussian approximation."),
        Figure("tails", "figures:draw_tails", grid=(1, 2), size=(7.0, 3.3),
               claims=("C5-tail-bound", "C5-tail-bound-path", "C5-tail-last"),
               caption="Empirical tail P(|Z| > t) of the standardised error at three sample sizes k in "
                       "[n/100, n], with averaging (sigma = sqrt(tau(1-tau))/f(q_tau)) and without "
                       "(sigma_k = sqrt(gamma_k tau(1-tau)/(2 f(q_tau)))), against the Gaussian limit and "
                       "the sub-Gaussian bound 2exp(-t^2/2)."),
    ),
)
