"""Gradual AA-CBR: neuro-argumentative case-based classification (Gould & Toni, 2025)."""
