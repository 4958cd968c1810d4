"""UG-CLU: task-agnostic continual learning-unlearning (Huang et al. 2025)."""
