"""Figures and pages of docs/ made from runs: the gallery, the varied set, the instant preset, high resolution."""
