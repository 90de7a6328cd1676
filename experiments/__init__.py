"""Experiments: commands that measure and print numbers (not timed tests).

Not part of the installed package: run them from the repository root, ``python -m experiments.codec``.
Every ``main`` takes ``argv``; the tests call the functions beside it. Nothing under ``weightinit/`` imports from here.
"""

import os

# Timings here are a first use's: a text's embedding is encoded, never read from the disk cache
# a previous run left (weightinit.generator.text_cache). experiments.startup sets it per command.
os.environ.setdefault("WEIGHTINIT_TEXT_CACHE", "0")
