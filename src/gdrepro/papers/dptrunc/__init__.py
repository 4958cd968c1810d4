"""dptrunc: Zampetakis & Zhou (2025), Private Statistical Estimation via Truncation, arXiv:2505.12541
(declaration; code in experiment.py)."""

from gdrepro.paper import Figure, Paper

PANEL = (4.6, 3.6)  # every figure is one row of panels

PAPER = Paper(
    slug="dptrunc",
    title="Private Statistical Estimation via Truncation",
    citation="Zampetakis & Zhou (2025), arXiv:2505.12541",
    run_label="simulate",
    tables=("mean_rmse", "cov_rmse"),
    figures=(
        Figure("mean_vs_n", "figures:draw_mean_vs_n", grid=lambda s: (1, len(s.dims)), panel=PANEL, squeeze=False,
               claims=("C2-consistency", "C2-private-centre", "C3-statistical-rate"),
               caption="Mean estimation error ||mu_hat - mu|| against n at eps = 1, one panel per dimension "
                       "(mean +- sd over replications), with clipping's population bias and the note's prototype."),
        Figure("mean_vs_eps", "figures:draw_mean_vs_eps", grid=(1, 1), panel=PANEL, squeeze=False,
               claims=("C3-privacy-rate",),
               caption="Mean estimation error against eps at a tenth of the largest n, middle dimension, "
                       "with the eps = inf and empirical errors and a 1/eps guide."),
        Figure("rates", "figures:draw_rates", grid=(1, 2), panel=PANEL, squeeze=False,
               claims=("C3-privacy-rate", "C3-statistical-rate", "C3-dimension"),
               caption="Truncated-MLE RMSE against n per eps with slope -1 and -1/2 guides (left) and its "
                       "privacy and statistical parts against the dimension d (right)."),
        Figure("bias_floor", "figures:draw_bias_floor", grid=(1, 2), panel=PANEL, squeeze=False,
               claims=("C2-consistency",),
               caption="Error against n at eps = inf and eps = 1: clipping and dropping plateau at their "
                       "population bias, the truncated MLE does not."),
        Figure("covariance", "figures:draw_covariance", grid=lambda s: (1, len(s.cov_epsilons)), panel=PANEL,
               squeeze=False, claims=("C4-covariance", "S1-covariance-small-n"),
               caption="Relative Frobenius error of the covariance estimators against n, one panel per eps, "
                       "with the note's prototype."),
        Figure("privacy", "figures:draw_privacy", grid=(1, 1), panel=PANEL, squeeze=False,
               claims=("C1-privacy", "C1-accountants-agree"),
               caption="Recomputed eps of every private run against its target: our zCDP accountant and "
                       "dp_accounting's RDP accountant."),
    ),
)
