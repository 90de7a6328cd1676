"""The benchmark: initialisations compared on held-out concepts with one fine-tune recipe.

Not installed with weightinit (it lives beside the package, in the repository): run it with
``python -m experiments.bench run|report|ablations`` (:mod:`~experiments.bench.cli`).

:mod:`~experiments.bench.methods` builds each starting model (scratch, base, base + fresh LoRA,
zoo mean, nearest concept by text, generated in 1 or k steps, the concept's own zoo weights);
:mod:`~experiments.bench.runner` fine-tunes them, resumably, with the library's
:mod:`weightinit.finetune`; :mod:`~experiments.bench.curves` turns the curves into time to quality
and speedups; :mod:`~experiments.bench.artefacts` keeps the image strips, machine and run-key
details; :mod:`~experiments.bench.report` writes ``results.json``, ``docs/BENCHMARKS.md`` and the
plots, with a section per measurement from the experiment that made it;
:mod:`~experiments.bench.ablations` trains and scores the generator ablations.
"""
