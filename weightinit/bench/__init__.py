"""The benchmark: initialisations compared on held-out concepts with one fine-tune recipe.

:mod:`~weightinit.bench.methods` builds each starting model (scratch, base, base + fresh LoRA,
zoo mean, nearest concept by text, generated in 1 or k steps, the concept's own zoo weights);
:mod:`~weightinit.bench.runner` fine-tunes them, resumably; :mod:`~weightinit.bench.curves`
turns the curves into time to quality and speedups; :mod:`~weightinit.bench.artefacts` keeps the
image strips, machine and run-key details; :mod:`~weightinit.bench.report` writes ``results.json``, ``docs/BENCHMARKS.md`` and
the plots; :mod:`~weightinit.bench.ablations` trains and scores the generator ablations.
"""
