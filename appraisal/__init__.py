"""Scoring, pure and I/O-free: completion, weights, caps, grades, template selection."""
