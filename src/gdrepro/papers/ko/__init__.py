"""ko: Feng, Huang, Fu, Wang & Yan (2025), KO kinetics-inspired optimizer (declaration; code in experiment.py)."""

from gdrepro.paper import Figure, Paper, Resources

PAPER = Paper(
    slug="ko",
    title="KO: Kinetics-inspired Neural Optimizer with PDE Simulation Approaches",
    citation="Feng, Huang, Fu, Wang & Yan (2025), arXiv:2505.14777",
    run_label="train",
    tables=("arms",),
    external=("cifar10", "cifar100", "imdb"),
    brief={"steps": 100, "text_steps": 100, "image_steps": 200},
    resources={
        "run": {  # ResNet-18 on CIFAR at paper scale
            "smoke": Resources(mem_mb=2000, runtime=60),
            "default": Resources(mem_mb=2000, runtime=60),
            "paper": Resources(mem_mb=16000, runtime=1440, gpu=1),
        },
    },
    figures=(
        Figure("condensation", "figures:draw_condensation", grid=(1, 3),
               claims=("C1-condensation-sgd", "C1-condensation-adam", "C1-condensation-cnn",
                       "C1-condensation-mean", "C1-condensation-hard"),
               caption="Weight correlation (mean |cos| between weight rows, averaged over layers) against the "
                       "training step at small initialisation, KO variants vs their base optimizer "
                       "(MLP with SGD and Adam, CNN with SGD, MNIST-1D), mean ± sd over seeds."),
        Figure("accuracy", "figures:draw_accuracy",
               claims=("C2-noninferior-mnist1d", "C2-noninferior-text", "C2-superior-cifar10",
                       "C2-superior-cifar100", "C2-superior-imdb"),
               caption="Test accuracy of the base optimizer and KO (soft/thresh) at standard initialisation, "
                       "per task and base optimizer, mean ± sd over seeds."),
        Figure("sweep", "figures:draw_sweep", grid=(1, 2), claims=("C1-condensation-sgd",),
               caption="coll_coef sweep of soft/thresh KO on SGD (MNIST-1D MLP, small initialisation): final "
                       "weight correlation and test accuracy against gamma (0 = base SGD)."),
        Figure("overhead", "figures:draw_overhead", claims=("C3-cost",),
               caption="Wall time per training iteration of KO over its base optimizer (MNIST-1D MLP, "
                       "interleaved rounds, median) against the paper's 'comparable cost'."),
    ),
)
