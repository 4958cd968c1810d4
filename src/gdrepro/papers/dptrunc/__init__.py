"""dptrunc: Zampetakis & Zhou (2025), Private Statistical Estimation via Truncation, arXiv:2505.12541."""
