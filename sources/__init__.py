"""Metric connectors with one face: each yields MetricSample rows and never touches storage."""
