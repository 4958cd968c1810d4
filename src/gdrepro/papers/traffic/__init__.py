"""traffic: Lei, Gong, Chen, Cheng & Yang (2025), multi-gradient descent for physics-informed traffic
models (declaration; code in experiment.py)."""

from gdrepro.paper import Figure, Paper, Resources

PAPER = Paper(
    slug="traffic",
    title="Reconstructing physics-informed machine learning for traffic flow modeling: "
    "a multi-gradient descent and Pareto learning approach",
    citation="Lei, Gong, Chen, Cheng & Yang (2025), arXiv:2505.13241 (Transportation Research Part C)",
    run_label="train",
    tables=("macro", "micro"),
    figures=(
        Figure("macro_errors", "figures:draw_macro_errors", grid=(1, 2), claims=("C1-macro-comparable",),
               caption="Macroscopic LWR PINN: relative L2 test error of density and of speed for LS over the "
                       "physics weight c (mean ± sd over seeds) against TMGD and DCGD (dashed lines)."),
        Figure("micro_rmse", "figures:draw_micro_rmse", grid=(1, 2),
               claims=("C2-micro-tmgd", "C2-micro-dcgd", "C3-official-tmgd-is-ls", "S1-patience-confounder"),
               caption="Microscopic car following: held-out closed-loop position and speed RMSE per method, "
                       "box plots over the paired runs with the runs as dots."),
        Figure("pareto_macro", "figures:draw_pareto_macro", claims=("C4-pareto",),
               caption="Final (data loss, physics loss) of every macroscopic run of seed 0, LS weights "
                       "annotated; non-dominated runs edged in red, with the non-dominated front."),
        Figure("pareto_micro", "figures:draw_pareto_micro", claims=("C4-pareto",),
               caption="Final (data loss, physics loss) of every microscopic run of the first paired run, "
                       "LS weights annotated; non-dominated runs edged in red, with the non-dominated front."),
        Figure("macro_field", "figures:draw_macro_field", grid=(1, 2), claims=("C1-macro-comparable",),
               caption="Density field over position and time: the Godunov LWR ground truth and the "
                       "normalised-TMGD PINN reconstruction (seed 0; simulated data only)."),
        Figure("micro_trajectory", "figures:draw_micro_trajectory", claims=("C2-micro-tmgd", "C2-micro-dcgd"),
               caption="Speed of one held-out follower over time: truth, its leader, and the closed-loop "
                       "simulations of LS (a = 0.9), TMGD and DCGD (proj)."),
    ),
    resources={
        "run": {"smoke": Resources(mem_mb=3000, runtime=20), "default": Resources(mem_mb=3000, runtime=20),
                "paper": Resources(mem_mb=3000, runtime=600, gpu=1)},
    },
    brief={"macro_iters": 200, "micro_iters": 100},
)
