"""localpl: local PL and descent lemma of GD for overparametrized linear models (Xu et al. 2025)
(declaration; code in experiment.py)."""

from gdrepro.paper import Figure, Paper

PAPER = Paper(
    slug="localpl",
    title="A Local Polyak-Lojasiewicz and Descent Lemma of Gradient Descent for Overparametrized Linear Models",
    citation="Xu, Min, Tarmoun, Mallada & Vidal (2025), arXiv:2505.11664",
    run_label="train",
    tables=("iterations", "by_scale"),
    figures=(
        Figure("loss_curves", "figures:draw_loss_curves", grid=(2, 3), squeeze=False,
               claims=("C2-linear-convergence", "C3-adaptive-vs-admissible"),
               caption="Relative loss gap (L_t - L*)/(L_0 - L*) against iteration for each step-size rule, "
                       "median over seeds; columns: losses, rows: init scale 1 and the smallest scale."),
        Figure("contraction", "figures:draw_contraction", grid=(2, 3), squeeze=False,
               claims=("C1-local-descent", "C4-rate-vs-theory", "C5-rate-improves"),
               caption="Top: measured per-step decrease against the predicted 1 - rho_t for every step of the "
                       "adaptive rule (the bound holds on or above the diagonal); bottom: both along one run."),
        Figure("iterations", "figures:draw_iterations", grid=(1, 3), squeeze=False,
               claims=("C3-adaptive-vs-admissible",),
               caption="Iterations to the target gap per rule and init scale (mean over seeds), square loss, "
                       "widths 5D and 20D balanced and 5D imbalanced, with the note's prototype marked."),
        Figure("step_size", "figures:draw_step_size", grid=(1, 3), squeeze=False,
               claims=("C6-step-grows",),
               caption="Adaptive step size eta_t / eta_0 against iteration, one line per init scale, "
                       "median over seeds, per loss."),
    ),
)
