"""psgla: Renaud, De Bortoli, Leclaire & Papadakis (2025), proximal Langevin sampling for
non-log-concave posteriors (declaration; code in experiment.py)."""

from gdrepro.paper import Figure, Paper

PAPER = Paper(
    slug="psgla",
    title="From stability of Langevin diffusion to convergence of proximal MCMC for non-log-concave sampling",
    citation="Renaud, De Bortoli, Leclaire & Papadakis (2025), arXiv:2505.14177",
    run_label="sample",
    datasets={"psgla/camera.npy": "experiment:build_camera"},
    # every stage at the house defaults (prepare 1000 MB, the others 2000 MB), as in the old rules
    figures=(
        Figure("gmm_w2", "figures:draw_w2", claims=("C1-symmetric", "C1-cross", "C1-symmetric-floor", "C1-cross-floor",
                                                        "C1-dissymmetric"), grid=(1, 3), panel=(4.0, 3.4),
               squeeze=False,
               caption="W2^2 to the exact posterior against the iterations N, per GMM prior (mean over 3 "
                       "observations): PnP-ULA and PnP-PSGLA, chain path and law of X_N, with the paper's values."),
        Figure("gmm_samples", "figures:draw_samples", claims=("C1-symmetric", "C1-cross"), grid=(3, 3),
               panel=(3.0, 3.0), squeeze=False,
               caption="Final chain-path samples of PnP-ULA and PnP-PSGLA over exact posterior samples, "
                       "3 GMM priors x 3 observations (the paper's Fig. 1)."),
        Figure("imaging_psnr", "figures:draw_psnr", claims=("C2-speedup", "C2-quality"), grid=(2, 2),
               panel=(4.5, 3.0), squeeze=False,
               caption="PSNR and SSIM of the running-mean MMSE estimate against iterations, PSGLA vs SGLA with "
                       "the TV prior, inpainting and deblurring."),
        Figure("imaging_restorations", "figures:draw_restorations", claims=("C2-quality",), grid=(2, 6),
               panel=(2.0, 2.3), squeeze=False,
               caption="Ground truth, observation, MMSE estimate and posterior standard deviation of PSGLA and "
                       "SGLA (seed 0), inpainting and deblurring."),
        Figure("stability", "figures:draw_stability", claims=("C3-stability-w2", "C3-stability-w1"),
               squeeze=False,
               caption="W1 and W2 between the invariant laws of two ULA chains (1-D double well) against the "
                       "drift perturbation size, one curve per seed, with the theorem's square-root rate."),
    ),
)
