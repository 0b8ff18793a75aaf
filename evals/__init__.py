"""Evaluation (phase 5.7): a golden set replayed against the inference endpoint, scores stored."""
