"""aacbr: Gould & Toni (2025), Gradual AA-CBR, neuro-argumentative case-based classification
(declaration; code in experiment.py)."""

from gdrepro.paper import Figure, Paper, Resources

PAPER = Paper(
    slug="aacbr",
    title="Neuro-Argumentative Learning with Case-Based Reasoning (Gradual AA-CBR)",
    citation="Gould & Toni (2025), arXiv:2505.15742",
    run_label="train",
    tables=("accuracy",),
    portable_kernels=("default",),  # training is chaotic in float rounding (claims.yaml deviations)
    brief={"iris_epochs": 50, "wdbc_epochs": 50, "glioma_epochs": 50, "mushroom_epochs": 50, "wine_epochs": 50},
    resources={
        "run": {  # n^3 blockers, n = 364-536 cases at paper scale
            "smoke": Resources(mem_mb=2000, runtime=30),
            "default": Resources(mem_mb=2000, runtime=30),
            "paper": Resources(mem_mb=16000, runtime=600, gpu=1),
        },
    },
    figures=(
        Figure("debate", "figures:draw_debate", grid=(1, 2), size=(7.0, 3.0), squeeze=False,
               caption="One prediction explained as the paper does (first iris test case, first seed; a run without "
                       "iris explains its first dataset's): the class "
                       "defaults' final strengths (the logits; p = softmax) and the strongest supporters (green) "
                       "and attackers (red) of the winning default, each case's contribution A_ad sigma_a with its "
                       "class and final strength."),
        Figure("accuracy", "figures:draw_accuracy", size=(7.0, 3.6),
               claims=("C1-comparable-iris", "C1-comparable-wdbc", "C1-comparable-iris-nn", "C1-comparable-wdbc-nn",
                       "C2-multiclass-continuous", "C3-beats-aacbr-glioma", "C3-beats-aacbr-mushroom",
                       "S1-heldout-wine"),
               caption="Test accuracy per dataset and method (Gradual AA-CBR, the paper's NN = one linear layer, "
                       "logistic regression, MLP, 5-NN, classic AA-CBR on the binary sets), mean over seeds with "
                       "95% t-intervals, the paper's single-run numbers as grey ticks; wine is our held-out check."),
        Figure("loss", "figures:draw_loss", size=(7.0, 3.0),
               caption="Gradual AA-CBR training loss (cross-entropy plus the nuclear-norm term) per epoch, "
                       "every dataset and seed."),
    ),
)
