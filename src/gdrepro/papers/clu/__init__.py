"""clu: Huang et al. (2025), UG-CLU task-agnostic continual learning-unlearning (declaration; code in
experiment.py)."""

from gdrepro.paper import Figure, Paper, Resources

PAPER = Paper(
    slug="clu",
    title="A Unified Gradient-based Framework for Task-agnostic Continual Learning-Unlearning (UG-CLU)",
    citation="Huang, Cheng, Zhang, Zheng, Wang, He, Li & Huang (2025), arXiv:2505.15178",
    run_label="train",
    tables=("task_aware", "class", "samples"),  # the first dataset's; later ones add <dataset>_<scenario>
    external=("cifar10", "tinyimagenet"),
    brief={"learn_steps": 20, "unlearn_steps": 10, "retrain_steps": 40},
    resources={
        "prepare": {  # tunes every learning rate on a validation split (trains; a GPU at paper scale)
            "smoke": Resources(mem_mb=2000, runtime=60),
            "default": Resources(mem_mb=2000, runtime=60),
            "paper": Resources(mem_mb=16000, runtime=1440, gpu=1),
        },
        "run": {  # ResNet-18 on CIFAR-10 / TinyImageNet at paper scale
            "smoke": Resources(mem_mb=2000, runtime=60),
            "default": Resources(mem_mb=2000, runtime=60),
            "paper": Resources(mem_mb=16000, runtime=2880, gpu=1),
        },
    },
    figures=(
        Figure("requests", "figures:draw_requests", grid=(1, 3), size=(7.0, 3.4),
               claims=("C1b-class-remaining", "C1b-ll-class-remaining"),
               caption="Remaining-test accuracy after each request of the three request sequences (task-aware, "
                       "cross-task class unlearning, random 10% sample unlearning), every method against both "
                       "oracles: mean over seeds with its 95% t-interval (bands)."),
        Figure("forgetting", "figures:draw_forgetting", grid=(2, 2), size=(7.0, 6.2),
               claims=("C1a-class-forgotten", "C2-samples-no-overforgetting", "C2-ll-samples-no-overforgetting",
                       "C5-privacy", "C5-loss-mia-privacy", "C5-loss-mia-samples-privacy"),
               caption="Forget-class test accuracy (class unlearning), forget-train accuracy, entropy MIA and "
                       "loss-threshold MIA on the forget set (random 10% samples) of every approximate method "
                       "(bars: mean over seeds, whiskers: 95% t-interval; a dot marks each value, so a zero bar "
                       "shows as a dot at 0), with Retrain and the like-for-like Retrain as reference lines."),
        Figure("gap", "figures:draw_gap", grid=(1, 2), size=(7.0, 3.6),
               claims=("C4a-smallest-gap", "C4a-ll-smallest-gap", "C4b-ablations-worse", "C4b-equal-steps-ablations-worse"),
               caption="Average absolute gap to Retrain (left) and to the like-for-like Retrain on the memory plus "
                       "the new task (right) over remaining, new-task, forget-train/test accuracy and MIA, mean "
                       "over the three scenarios (95% t-interval over seeds); UG-CLU and its ablations in orange."),
    ),
)
