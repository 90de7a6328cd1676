"""Benchmarks: commands that print numbers (not timed tests). ``python -m weightinit.benchmarks.codec``."""
