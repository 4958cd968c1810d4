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
        Figure("accuracy", "figures:draw_accuracy", grid=(1, 3), size=(7.4, 3.0),
               claims=("C1-delay-add", "C1-delay-mul", "C1-memorise-first", "C2-adamlr-add", "C2-adamlr-mul",
                       "C3-noemb-together", "C3-noemb-mul-fails", "C3-noemb-immediate"),
               caption="Train (dashed) and test (solid) accuracy against the training step, every seed: the "
                       "embedding MLP on add and mul with c = 1 and c = 10, and the MLP without embeddings."),
        Figure("c_sweep", "figures:draw_c_sweep", grid=(1, 1), panel=(5.0, 3.4),
               claims=("C2-sweep-seeds", "C2-sweep", "C2-adamlr-add"),
               caption="Steps to 95% test accuracy against the embedding learning-rate factor c on add (runs "
                       "that never reach it at the step cap): every seed's run (dots), each seed's own sweep "
                       "(thin lines, seeds 0-2) and the median over seeds, with the adaptive c_t (ours)."),
        Figure("splits", "figures:draw_splits", grid=(1, 2), size=(7.2, 3.2),
               claims=("C4-skew-plateau", "C4-balanced", "C4-skew-plateau-adamw"),
               caption="Test accuracy against the training step per split strategy, add, c = 1, every seed: "
                       "Adam with coupled L2 decay (random, uniform over a, skewed, skewed with our balanced "
                       "sampler) and decoupled AdamW (random, skewed)."),
        Figure("norm_vs_frequency", "figures:draw_norms", grid=(2, 2), size=(7.2, 6.2),
               claims=("C4-rare-norms", "C4-rare-norms-adamw", "C4-tf-rare-norms"),
               caption="Final embedding norm of each token against its frequency in the training rows: "
                       "skewed and random splits (Adam, coupled L2), the skewed split with decoupled AdamW, "
                       "and the small transformer on the skewed split, with the mean norm at initialisation."),
        Figure("noemb_readings", "figures:draw_noemb_readings", grid=(2, 3), size=(7.4, 5.6),
               claims=("C3-onehot-immediate", "C3-onehot-no-delay", "C3-onehot-mul-fails", "C3-noemb-immediate",
                       "C3-reading-onehot-adamw", "C3-reading-onehot-lr0.001", "C3-reading-onehot-h128"),
               caption="The MLP without embeddings under each pre-registered reading: train (dashed) and test "
                       "(solid) accuracy against the step, every seed, with the embedding MLP's test accuracy "
                       "(grey). Primary reading: one-hot inputs, Adam with coupled L2 1e-3, lr 0.01, width 512."),
        Figure("transformer", "figures:draw_transformer", grid=(1, 3), size=(7.4, 3.0),
               claims=("C1-tf-delay-add", "C2-tf-adamlr-add", "C1-tf-delay-mul", "C2-tf-adamlr-mul", "C2-tf-adamlr-mul-long",
                       "C4-tf-skew-plateau", "C4-tf-balanced"),
               caption="A one-layer transformer (d_model 32, 4 heads): train (dashed) and test (solid) "
                       "accuracy with c = 1 and c = 10 on (a + b) and (a * b) mod 97, and test accuracy on add "
                       "with the random split, the skewed split and the skewed split with our balanced "
                       "sampler, every seed."),
        Figure("hessian", "figures:draw_hessian", grid=(1, 2), size=(7.2, 3.2),
               claims=("C5-curvature-gap", "C5-curvature-narrowed"),
               caption="Top Hessian eigenvalue of the E and W blocks against the training step, add, "
                       "c = 1 and c = 10."),
        Figure("fourier_ranks", "figures:draw_fourier_ranks", grid=(1, 3), size=(7.4, 3.0),
               caption="Fourier spectrum of the embedding E over tokens (initial and final), and the "
                       "numerical ranks of E, W and EW against the training step, add, c = 1 and c = 10."),
    ),
)
