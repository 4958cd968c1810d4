"""PSGLA: proximal Langevin sampling for non-log-concave posteriors (Renaud et al. 2025)."""
