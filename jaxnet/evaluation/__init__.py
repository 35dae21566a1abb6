"""Evaluation: whole-split metrics (and, later, multi-crop views, ensembles, calibration)."""
