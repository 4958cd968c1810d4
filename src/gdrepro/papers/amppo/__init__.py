"""amppo: Sane (2025), AM-PPO advantage alpha-modulation on MuJoCo (declaration; code in experiment.py)."""

from gdrepro.paper import Figure, Paper, Resources


def _one_row_per_env(settings) -> tuple[int, int]:
    """One panel per environment of the scale, in one row."""
    return 1, len(settings.envs)


def _two_rows_per_env(settings) -> tuple[int, int]:
    """Two readings (rows) per environment (columns)."""
    return 2, len(settings.envs)


def _one_row_of_two_per_env(settings) -> tuple[int, int]:
    """One row of two panels per environment."""
    return len(settings.envs), 2


PAPER = Paper(
    slug="amppo",
    title="AM-PPO: (Advantage) Alpha-Modulation with Proximal Policy Optimization",
    citation="Sane (2025), arXiv:2505.15514",
    run_label="train",
    figures=(
        Figure("learning_curves", "figures:draw_learning_curves", grid=_one_row_per_env, panel=(5.0, 3.4),
               squeeze=False,
               claims=("C1-noninferior-hopper", "C1-noninferior-hopper-last-third", "C1-superior-halfcheetah", "C1-superior-hopper",
                       "C1-superior-walker2d", "C4-cleanrl-band-halfcheetah", "C4-cleanrl-band-hopper",
                       "C4-cleanrl-band-walker2d", "C5-sustained-progress-hopper", "S0-baseline-100k"),
               caption="Mean return of the last 10 training episodes against environment steps, PPO and "
                       "AM-PPO (minibatch and full-batch gating norm), mean ± sd over seeds, one panel per env; the "
                       "last third of training is shaded; CleanRL's published 1M-step band at paper scale."),
        Figure("per_seed", "figures:draw_per_seed", grid=_one_row_of_two_per_env, panel=(3.5, 3.6), squeeze=False,
               claims=("C1-noninferior-hopper", "C1-noninferior-hopper-last-third", "C5-sustained-progress-hopper"),
               caption="Per-seed readings the claims are judged on. Left: AM-PPO/PPO return ratios per seed "
                       "(paired: same initial weights and environment seed), final return (last 10 episodes) and "
                       "mean over the last third of training, with the 0.8 non-inferiority margin and its 0.7 "
                       "tolerance boundary. Right: slope of the training return over the last third, per method. "
                       "Dots: seeds; circle and bar: mean and 95% t-interval over seeds."),
        Figure("controller", "figures:draw_controller", grid=_one_row_per_env, panel=(5.0, 3.4), squeeze=False,
               claims=("S1-minibatch-norm-trap",),
               caption="The AM-PPO controller per PPO iteration: alpha_ema (log scale), the controller's "
                       "saturation estimate s_ema and the share of entries with |Z| > tau at gating, for both "
                       "gating norms, mean over seeds."),
        Figure("clipping", "figures:draw_clipping", grid=_two_rows_per_env, panel=(5.0, 3.6), squeeze=False,
               claims=("C2-reduced-ratio-clipping-hopper", "C2-reduced-clipping-hopper"),
               caption="Two readings of 'clipping', per PPO iteration, mean ± sd over seeds. Top: PPO's ratio "
                       "clip fraction (share of samples with |ratio - 1| > 0.2, the official code's clipfrac); "
                       "bottom: median pre-clip gradient norm against max_grad_norm 0.5, the legend giving the "
                       "share of updates where gradient-norm clipping fired."),
        Figure("evaluation", "figures:draw_evaluation", grid=_one_row_per_env, panel=(5.0, 3.4), squeeze=False,
               claims=("C1-noninferior-hopper",),
               caption="Deterministic evaluation return of the saved policies per method (bars: mean ± sd over "
                       "seeds, dots: seeds), beside the final training return (last 10 episodes, mean over seeds)."),
    ),
    resources={
        "run": {"smoke": Resources(mem_mb=1500, runtime=30), "default": Resources(mem_mb=1500, runtime=30),
                "paper": Resources(mem_mb=1500, runtime=240)},  # CPU-bound: MuJoCo + 64-64 MLPs
        "evaluate": Resources(mem_mb=1000),
        "figures": Resources(mem_mb=1000),
    },
)
