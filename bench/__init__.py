"""Benchmarks and evaluations run by hand; their figures go to docs/decisions.md."""
