"""Experiments: commands that measure and print numbers (not timed tests).

Not part of the installed package: run them from the repository root, ``python -m experiments.codec``.
Every ``main`` takes ``argv``; the tests call the functions beside it. Nothing under ``weightinit/`` imports from here.
"""
