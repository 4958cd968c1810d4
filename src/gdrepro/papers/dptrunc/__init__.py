"""dptrunc: Zampetakis & Zhou (2025), Private Statistical Estimation via Truncation, arXiv:2505.12541
(declaration; code in experiment.py)."""

from gdrepro.paper import Figure, Paper

WIDE = 7.0  # inches: every figure is one row of panels at column width, legend below

PAPER = Paper(
    slug="dptrunc",
    title="Private Statistical Estimation via Truncation",
    citation="Zampetakis & Zhou (2025), arXiv:2505.12541",
    run_label="simulate",
    tables=("mean_rmse", "cov_rmse"),
    figures=(
        Figure("mean_vs_n", "figures:draw_mean_vs_n", grid=lambda s: (1, len(s.dims)), size=(WIDE, 2.6), squeeze=False,
               claims=("C2-consistency", "C2-private-centre", "C2-private-centre-small-n", "C3-statistical-rate"),
               caption="Mean estimation error ||mu_hat - mu|| against n at eps = 1, one panel per dimension "
                       "(mean over seeds of the per-seed RMSE, 95% t-interval over seeds), with clipping's "
                       "population bias and the note's prototype."),
        Figure("mean_vs_eps", "figures:draw_mean_vs_eps", grid=(1, 1), size=(3.5, 2.8), squeeze=False,
               claims=("C3-privacy-rate",),
               caption="Mean estimation error against eps at a tenth of the largest n, d = 10 (seed intervals), "
                       "with the eps = inf and empirical errors and a 1/eps guide."),
        Figure("rates", "figures:draw_rates", grid=(1, 2), size=(WIDE, 3.0), squeeze=False,
               claims=("C3-privacy-rate", "C3-statistical-rate", "C3-dimension", "C3-converged"),
               caption="Truncated-MLE RMSE against n per eps with slope -1 and -1/2 guides (left) and its "
                       "privacy and statistical parts against the dimension d, with the converged MLE's "
                       "delta-method RMSE (right); seed intervals."),
        Figure("bias_floor", "figures:draw_bias_floor", grid=(1, 2), size=(WIDE, 2.8), squeeze=False,
               claims=("C2-consistency",),
               caption="Error against n at eps = inf and eps = 1 (seed intervals): clipping and dropping "
                       "plateau at their population bias, the truncated MLE does not."),
        Figure("covariance", "figures:draw_covariance", grid=lambda s: (1, len(s.cov_epsilons)), size=(WIDE, 2.6),
               squeeze=False, claims=("C4-covariance", "C4-covariance-private", "S1-covariance-small-n"),
               caption="Relative Frobenius error of the covariance estimators against n, one panel per eps "
                       "(d = 5; seed intervals), public and private coarse Sigma_0, with the note's prototype."),
        Figure("covariance_dimension", "figures:draw_covariance_dimension", grid=(1, 2), size=(WIDE, 2.8),
               squeeze=False, claims=("C4-covariance-dimension",),
               caption="Spectral error of the truncated-MLE covariance against d at the largest n (public "
                       "Sigma_0; seed intervals): its privacy part at the smallest eps with the bound's d^{3/2} "
                       "and our sensitivity's (sqrt d + 1)^2 sqrt d (left), the eps = inf error with sqrt d (right)."),
        Figure("privacy", "figures:draw_privacy", grid=(1, 2), size=(WIDE, 3.2), squeeze=False,
               claims=("C1-privacy-audit", "C1-audit-power", "C1-privacy", "C1-accountants-agree"),
               caption="Left: recomputed eps of every private run against its target (our zCDP accountant and "
                       "dp_accounting's RDP accountant, from the ledgers). Right: the privacy audit per release: "
                       "the sd of the noise actually added over the calibrated sigma (95% chi-square interval) "
                       "and the worst change of the released statistic when one record is replaced, over its "
                       "sensitivity."),
    ),
)
