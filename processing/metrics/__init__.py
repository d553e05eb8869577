"""Evaluation metrics: one function per metric over one question's result, and a registry of their names."""
