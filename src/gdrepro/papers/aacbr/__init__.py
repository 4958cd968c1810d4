"""aacbr: Gould & Toni (2025), Gradual AA-CBR, neuro-argumentative case-based classification
(declaration; code in experiment.py)."""

from gdrepro.paper import Figure, Paper, Resources

PAPER = Paper(
    slug="aacbr",
    title="Neuro-Argumentative Learning with Case-Based Reasoning (Gradual AA-CBR)",
    citation="Gould & Toni (2025), arXiv:2505.15742",
    run_label="train",
    tables=("accuracy",),
    external=("glioma", "mushroom"),
    brief={"iris_epochs": 50, "wdbc_epochs": 50, "glioma_epochs": 50, "mushroom_epochs": 50},
    resources={
        "run": {  # n^3 blockers, n = 364-536 cases at paper scale
            "smoke": Resources(mem_mb=2000, runtime=30),
            "default": Resources(mem_mb=2000, runtime=30),
            "paper": Resources(mem_mb=16000, runtime=600, gpu=1),
        },
    },
    figures=(
        Figure("graph", "figures:draw_graph", size=(6.0, 5.0), claims=("C4-no-default-edges", "C4-acyclic"),
               caption="The learned, post-processed iris casebase graph of the first seed: cases at the height "
                       "of their projection s = w.x, coloured by class, supports green and attacks red "
                       "(|A| > 0.1), class defaults at the bottom."),
        Figure("accuracy", "figures:draw_accuracy", size=(6.5, 3.6),
               claims=("C1-comparable-iris", "C1-comparable-wdbc", "C2-multiclass-continuous",
                       "C3-beats-aacbr-glioma", "C3-beats-aacbr-mushroom"),
               caption="Test accuracy per dataset and method (Gradual AA-CBR, logistic regression, MLP, k-NN, "
                       "classic AA-CBR), mean ± sd over seeds, with the paper's single-run numbers as markers."),
        Figure("loss", "figures:draw_loss", size=(5.0, 3.4),
               caption="Gradual AA-CBR training loss (cross-entropy plus the nuclear-norm term) per epoch, "
                       "every dataset and seed."),
    ),
)
