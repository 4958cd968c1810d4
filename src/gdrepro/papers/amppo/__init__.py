"""amppo: Sane (2025), AM-PPO advantage alpha-modulation on MuJoCo (declaration; code in experiment.py)."""

from gdrepro.paper import Figure, Paper, Resources


def _one_row_per_env(settings) -> tuple[int, int]:
    """One panel per environment of the scale, in one row."""
    return 1, len(settings.envs)


PAPER = Paper(
    slug="amppo",
    title="AM-PPO: (Advantage) Alpha-Modulation with Proximal Policy Optimization",
    citation="Sane (2025), arXiv:2505.15514",
    run_label="train",
    figures=(
        Figure("learning_curves", "figures:draw_learning_curves", grid=_one_row_per_env, panel=(5.0, 3.4),
               squeeze=False,
               claims=("C1-noninferior-hopper", "C1-superior-halfcheetah", "C1-superior-hopper",
                       "C1-superior-walker2d", "C4-cleanrl-band-halfcheetah", "C4-cleanrl-band-hopper",
                       "C4-cleanrl-band-walker2d", "S0-baseline-100k"),
               caption="Mean return of the last 10 training episodes against environment steps, PPO and "
                       "AM-PPO (minibatch and full-batch gating norm), mean ± sd over seeds, one panel per env; "
                       "CleanRL's published 1M-step band at paper scale."),
        Figure("controller", "figures:draw_controller", grid=_one_row_per_env, panel=(5.0, 3.4), squeeze=False,
               claims=("S1-minibatch-norm-trap",),
               caption="The AM-PPO controller per PPO iteration: alpha_ema (log scale), the controller's "
                       "saturation estimate s_ema and the share of entries with |Z| > tau at gating, for both "
                       "gating norms, mean over seeds."),
        Figure("clipping", "figures:draw_clipping", grid=_one_row_per_env, panel=(5.0, 3.4), squeeze=False,
               claims=("C2-reduced-clipping-hopper",),
               caption="Median pre-clip gradient norm per PPO iteration for each method, mean over seeds, "
                       "against max_grad_norm 0.5; the legend gives the share of updates where clipping fired."),
        Figure("evaluation", "figures:draw_evaluation", grid=_one_row_per_env, panel=(5.0, 3.4), squeeze=False,
               claims=("C1-noninferior-hopper",),
               caption="Deterministic evaluation return of the saved policies per method (bars: mean ± sd over "
                       "seeds, dots: seeds), beside the final training return (last 10 episodes)."),
    ),
    resources={
        "run": {"smoke": Resources(mem_mb=1500, runtime=30), "default": Resources(mem_mb=1500, runtime=30),
                "paper": Resources(mem_mb=1500, runtime=240)},  # CPU-bound: MuJoCo + 64-64 MLPs
        "evaluate": Resources(mem_mb=1000),
        "figures": Resources(mem_mb=1000),
    },
)
