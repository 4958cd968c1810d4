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
                                                        "C1-dissymmetric"), grid=(1, 3), size=(7.2, 2.8),
               squeeze=False,
               caption="W2^2 to the exact posterior against the iterations N, per GMM prior (mean over 3 "
                       "observations): PnP-ULA and PnP-PSGLA, chain path (1000-point subsample, mean over seeds with "
                       "its 95% interval) and law of X_N (200 chains), the 2000-point path W2^2 at the final N "
                       "(diamonds, seed interval), the noise floor of each (two exact samples of the same size) and "
                       "the paper's values (stars)."),
        Figure("gmm_samples", "figures:draw_samples", claims=("C1-symmetric", "C1-cross"), grid=(3, 3),
               size=(7.0, 7.0), squeeze=False,
               caption="Final chain-path samples (1000 of the N = 1e4 iterates, seed 0) of PnP-ULA and PnP-PSGLA "
                       "over exact posterior samples, 3 GMM priors x 3 observations (the paper's Fig. 1)."),
        Figure("imaging_psnr", "figures:draw_psnr",
               claims=("C2-speedup", "C2-quality", "C2-speedup-pnpula", "C2-speedup-pnpula-deblurring"),
               grid=(2, 2), size=(7.2, 5.6), squeeze=False,
               caption="PSNR (dB) of the running-mean MMSE estimate against iterations (mean over seeds with its 95% "
                       "interval) on the 64x64 camera stand-in. Top: PSGLA vs SGLA with the TV prior (ours). Bottom: "
                       "PnP-PSGLA vs PnP-ULA at the paper's step, both with the Gaussian-mixture patch-prior MMSE "
                       "denoiser (the paper's comparison, its DnCNN replaced). Dotted: the paper's castle PSNRs, for "
                       "reference only (a different image; not comparable with ours). SSIM is in metrics.json."),
        Figure("imaging_restorations", "figures:draw_restorations",
               claims=("C2-quality", "C2-speedup-pnpula", "C2-speedup-pnpula-deblurring"), grid=(4, 6),
               size=(7.2, 5.6), squeeze=False,
               caption="Seed 0, inpainting (rows 1-2) and deblurring (rows 3-4): ground truth, observation and the "
                       "final MMSE estimate of each sampler; below, each sampler's posterior standard deviation on "
                       "one colour scale per problem (colourbar). PnP-ULA's map is that of its few thousand iterations "
                       "at the paper's step, still far from stationarity."),
        Figure("stability", "figures:draw_stability",
               claims=("C3-stability-w2", "C3-stability-w1", "C3-stability-w1-linear"), grid=(1, 2),
               size=(7.2, 3.2), squeeze=False,
               caption="Left: W1 and W2 between the invariant laws of two ULA chains (1-D double well) against the "
                       "drift perturbation size, one curve per seed (each seed its own smooth perturbation direction), "
                       "with the theorem's square-root rate. Right: W1 / ||b1 - b2|| per seed, the constant of the W1 "
                       "bound that each direction needs (no claim: the theorem gives no value for it)."),
    ),
)
