"""Confidence from token log-probabilities: parsing every service format, measures, early context pruning."""
