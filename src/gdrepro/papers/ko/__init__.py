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
        Figure("condensation", "figures:draw_condensation", grid=(2, 2), size=(7.0, 5.6),
               claims=("C1-condensation-sgd", "C1-condensation-adam", "C1-condensation-cnn",
                       "C1-condensation-mean", "C1-condensation-hard", "C1-condensation-standard",
                       "S3-reading-unit"),
               caption="Weight correlation (mean |cos| between weight rows, averaged over layers) against the "
                       "training step, KO readings vs their base optimizer on MNIST-1D: small initialisation "
                       "(MLP with SGD and Adam, CNN with SGD) and standard initialisation (MLP with SGD); mean "
                       "with its 95% interval over seeds."),
        Figure("collisions", "figures:draw_collisions", grid=(1, 2), size=(7.0, 3.8),
               claims=("S2-where-ko-acts", "C1-condensation-standard", "C2-noninferior-small"),
               caption="Share of weight-row pairs that collide under KO: along training for the primary reading "
                       "(small vs standard initialisation) and over the whole run for every thresholded KO arm, "
                       "mean with its 95% interval over seeds (symmetric-log axes: 0 is shown)."),
        Figure("accuracy", "figures:draw_accuracy", grid=(1, 2), size=(7.0, 3.6),
               claims=("C2-noninferior-mnist1d", "C2-noninferior-small", "C2-noninferior-text"),
               caption="Test-accuracy difference KO - base optimizer, paired per seed (same initialisation and "
                       "mini-batches), with its 95% interval over seeds, at standard and at small "
                       "initialisation, per task, base optimizer and reading of the formula (R1 soft/thresh "
                       "gamma 0.5, the primary reading; R2 thresh gamma 0.5 with coefficient 1; R3 soft/mean "
                       "gamma 1; hard DSMC collisions gamma 0.5); the base optimizer's accuracy in brackets; "
                       "dashed: the non-inferiority margin (ours)."),
        Figure("sweep", "figures:draw_sweep", grid=(1, 2), size=(7.0, 3.0), claims=("C1-condensation-sgd",),
               caption="coll_coef sweep of soft/thresh KO on SGD (MNIST-1D MLP, small initialisation): final "
                       "weight correlation KO / SGD and test accuracy KO - SGD, paired per seed, against gamma, "
                       "with 95% intervals over seeds (gamma 0 is base SGD)."),
        Figure("overhead", "figures:draw_overhead", grid=(1, 2), size=(7.0, 2.6), claims=("C3-cost", "C3-cost-resnet18"),
               caption="Wall time per training iteration of KO over its base optimizer on this CPU, single "
                       "thread: the MNIST-1D MLP (interleaved rounds, median) and ResNet-18's layer sizes at "
                       "batch 128 (forward/backward plus each optimizer's step on the same gradients); one value "
                       "per seed, mean with its 95% interval (the spread of the measurement under load)."),
    ),
)
