"""Benchmarks: scripts that print measured figures (not run by pytest)."""
