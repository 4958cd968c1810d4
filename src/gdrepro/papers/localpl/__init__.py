"""localpl: local PL and descent lemma of GD for overparametrized linear models (Xu et al. 2025)."""
