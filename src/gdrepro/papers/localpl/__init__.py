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
        Figure("loss_curves", "figures:draw_loss_curves", grid=(2, 3), squeeze=False, size=(7.2, 5.2),
               claims=("C2a-linear-square", "C2b-linear-huber", "C2c-linear-logistic", "C3-adaptive-vs-admissible"),
               caption="Relative loss gap (L_t - L*)/(L_0 - L*) against iteration for each step-size rule: mean of "
                       "log10 over seeds (while every seed runs) with its 95% interval; columns: losses, rows: init "
                       "scale 1 and the smallest scale, width 5D, balanced init."),
        Figure("contraction", "figures:draw_contraction", grid=(2, 3), squeeze=False, size=(7.2, 5.2),
               claims=("C1-local-descent", "C4-rate-vs-theory", "C5-rate-improves"),
               caption="Top: measured per-step decrease against the predicted 1 - rho_t for every step of the "
                       "adaptive rule (the bound holds on or above the diagonal); bottom: both along one run."),
        Figure("iterations", "figures:draw_iterations", grid=(1, 3), squeeze=False, size=(7.2, 3.0),
               claims=("C3-adaptive-vs-admissible",),
               caption="Iterations to the target per rule and init scale (mean over seeds, 95% interval; n/r: some "
                       "seed did not reach it), square loss, widths 5D and 20D balanced and 5D imbalanced, with the "
                       "note's prototype marked."),
        Figure("step_size", "figures:draw_step_size", grid=(1, 3), squeeze=False, size=(7.2, 2.9),
               claims=("C6-step-grows", "C6b-step-grows-as-loss-falls"),
               caption="Adaptive step size eta_t / eta_0 against iteration, one line per init scale (mean of log10 "
                       "over seeds with its 95% interval), width 5D, balanced init, per loss."),
        Figure("constant_steps", "figures:draw_constant_steps", grid=(1, 3), squeeze=False, size=(7.2, 3.0),
               claims=("C3b-adaptive-vs-certified-constant", "S2-adaptive-vs-tuned-constant",
                       "S3-adaptive-vs-descent-certified-constant"),
               caption="Iterations to 1e-6 of constant-step choices over the adaptive rule's (log10; above 0: the "
                       "adaptive rule is faster), per init scale and loss: per seed the mean over configurations where "
                       "both reached the target, then the mean over seeds with its 95% interval. Constant steps "
                       "c / K_0, c in 1/8..4, certified on their own run or chosen in hindsight."),
        Figure("local_constants", "figures:draw_local_constants", grid=(1, 2), squeeze=False, size=(7.2, 3.2),
               claims=("C7-local-constants-measured", "C8-beyond-prior-assumptions"),
               caption="Left: local smoothness bound against the Hessian's largest eigenvalue (Lanczos on exact "
                       "Hessian-vector products) at the initial and last adaptive iterate of every run (the bound "
                       "holds on or above the diagonal). Right: share of adaptive runs reaching the target per width "
                       "(mean over seeds, 95% interval); every width is below Du & Hu's requirement and no init is "
                       "approximately balanced."),
    ),
)
