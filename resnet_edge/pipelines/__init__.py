"""Pipelines: compile, validate, bench, sensitivity, fallback — straight sequences of steps returning dataclasses."""
