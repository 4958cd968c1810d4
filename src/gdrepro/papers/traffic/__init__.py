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
        Figure("macro_errors", "figures:draw_macro_errors", grid=(1, 2), size=(7.0, 3.0),
               claims=("C1-macro-comparable", "C1-macro-comparable-tmgd-paired"),
               caption="Macroscopic LWR PINN on the paper's loop-detector data (dataNew.npz): relative L2 test "
                       "error of density and of speed for LS over the physics weight c (mean ± sd over seeds) "
                       "against TMGD and DCGD (dashed lines, means over seeds)."),
        Figure("micro_rmse", "figures:draw_micro_rmse", grid=(2, 2), size=(7.0, 6.0), squeeze=False,
               claims=("C2-micro-tmgd", "C2-micro-tmgd-norm", "C2-micro-dcgd", "C3-official-tmgd-is-ls",
                       "S1-patience-confounder", "S1-patience-confounder-last", "S3-official-comparison-last"),
               caption="Microscopic car following on the generated stand-in for NGSIM (not real data): held-out "
                       "closed-loop position and speed RMSE per method, box plots over the paired runs with the "
                       "runs as dots, at the best validation iterate (top) and at the last iterate (bottom)."),
        Figure("pareto_macro", "figures:draw_pareto_macro", grid=(1, 2), size=(7.0, 3.2),
               claims=("C4-pareto", "C4-pareto-last"),
               caption="(data loss, physics loss) of every macroscopic run of seed 0 (dataNew.npz) at its best "
                       "validation iterate (left) and at its last iterate (right), LS weights c annotated; "
                       "non-dominated runs edged in red, with the non-dominated front."),
        Figure("pareto_micro", "figures:draw_pareto_micro", grid=(1, 2), size=(7.0, 3.2),
               claims=("C4-pareto", "C4-pareto-last", "S2-standin-conflict"),
               caption="(data loss, physics loss) of every microscopic run of the first paired run (generated "
                       "stand-in) at its best validation iterate (left) and at its last iterate (right), LS "
                       "weights annotated; non-dominated runs edged in red, with the non-dominated front."),
        Figure("macro_field", "figures:draw_macro_field", grid=(1, 2), size=(7.0, 3.0),
               claims=("C1-macro-comparable",),
               caption="Density (flow / speed) over detector position and time: the observed loop-detector "
                       "data of dataNew.npz (all splits) and the normalised-TMGD PINN reconstruction (seed 0)."),
        Figure("micro_trajectory", "figures:draw_micro_trajectory", size=(7.0, 3.0),
               claims=("C2-micro-tmgd", "C2-micro-tmgd-norm", "C2-micro-dcgd"),
               caption="Speed of one held-out follower of the generated stand-in over time: recorded, its "
                       "leader, and the closed-loop simulations of LS (a = 0.9), TMGD raw and normalised, and "
                       "DCGD (proj)."),
    ),
    resources={
        "run": {"smoke": Resources(mem_mb=3000, runtime=20), "default": Resources(mem_mb=3000, runtime=20),
                "paper": Resources(mem_mb=3000, runtime=600, gpu=1)},
    },
    brief={"macro_iters": 200, "micro_iters": 100},
)
