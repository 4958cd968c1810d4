"""grokking: AlQuabeh, Bojkovic, Nwadike & Inui (2025), grokking and the embedding layer
(declaration; code in experiment.py)."""

from gdrepro.paper import Figure, Paper, Resources

PAPER = Paper(
    slug="grokking",
    title="Mechanistic Insights into Grokking from the Embedding Layer",
    citation="AlQuabeh, Bojkovic, Nwadike & Inui (2025), arXiv:2505.15624",
    run_label="train",
    tables=("runs",),
    brief={"steps": 300, "split_steps": 300, "noemb_steps": 300},
    resources={
        "run": {  # 4 tasks x the c sweep at paper scale
            "smoke": Resources(mem_mb=2000, runtime=30),
            "default": Resources(mem_mb=2000, runtime=30),
            "paper": Resources(mem_mb=8000, runtime=720, gpu=1),
        },
    },
    figures=(
        Figure("accuracy", "figures:draw_accuracy", grid=(1, 3), panel=(4.6, 3.4),
               claims=("C1-delay-add", "C1-delay-mul", "C1-memorise-first", "C2-adamlr-add", "C2-adamlr-mul",
                       "C3-noemb-together", "C3-noemb-mul-fails", "C3-noemb-immediate"),
               caption="Train (dashed) and test (solid) accuracy against the training step, every seed: the "
                       "embedding MLP on add and mul with c = 1 and c = 10, and the MLP without embeddings."),
        Figure("c_sweep", "figures:draw_c_sweep", grid=(1, 1), panel=(4.6, 3.4),
               claims=("C2-sweep", "C2-adamlr-add"),
               caption="Steps to 95% test accuracy against the embedding learning-rate factor c on add (runs "
                       "that never reach it at the step cap), median over seeds, with the adaptive c_t (ours)."),
        Figure("splits", "figures:draw_splits", grid=(1, 1), panel=(4.6, 3.4), claims=("C4-skew-plateau",),
               caption="Test accuracy against the training step per split strategy (random, uniform over a, "
                       "skewed, skewed with our balanced sampler), add, c = 1, every seed."),
        Figure("norm_vs_frequency", "figures:draw_norms", grid=(1, 2), panel=(4.6, 3.4), claims=("C4-rare-norms",),
               caption="Final embedding norm of each token against its frequency in the training rows, "
                       "skewed and random splits, with the mean norm at initialisation."),
        Figure("hessian", "figures:draw_hessian", grid=(1, 2), panel=(4.6, 3.4),
               claims=("C5-curvature-gap", "C5-curvature-narrowed"),
               caption="Top Hessian eigenvalue of the E and W blocks against the training step, add, "
                       "c = 1 and c = 10."),
        Figure("fourier_ranks", "figures:draw_fourier_ranks", grid=(1, 3), panel=(4.6, 3.4),
               caption="Fourier spectrum of the embedding E over tokens (initial and final), and the "
                       "numerical ranks of E, W and EW against the training step, add, c = 1 and c = 10."),
    ),
)
