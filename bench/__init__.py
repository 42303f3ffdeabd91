"""Benchmarks of the operator and the adapter against Kubernetes' own Job controller (see bench/run.py)."""
