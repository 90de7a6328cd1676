"""The weight generator: a text- and block-index-conditioned block denoiser, sampled in one step.

Modules, one concept each: :mod:`~weightinit.generator.text` (concept text -> embeddings),
:mod:`~weightinit.generator.denoisers` (the block denoisers), :mod:`~weightinit.generator.sampling`
(noise -> blocks), :mod:`~weightinit.generator.training` (zoo -> trained denoiser),
:mod:`~weightinit.generator.resolved` (a concept text read once: :class:`ResolvedConcept`) and
:mod:`~weightinit.generator.model` (:class:`WeightGenerator`), whose folder on disk is
:mod:`~weightinit.generator.folder` (its config :mod:`~weightinit.generator.config`, model card
:mod:`~weightinit.generator.card`, known phrasings :mod:`~weightinit.generator.phrasings`). Names
are imported lazily, so ``import weightinit.generator`` costs nothing.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "WeightGenerator": "weightinit.generator.model",
    "GeneratorConfig": "weightinit.generator.config",
    "ResolvedConcept": "weightinit.generator.resolved",
    "TextEncoder": "weightinit.generator.text",
    "TextEmbedding": "weightinit.generator.text",
    "normalise_concept_text": "weightinit.generator.text",
    "DENOISERS": "weightinit.generator.denoisers",
    "BlockMLP": "weightinit.generator.denoisers",
    "BlockUNet1D": "weightinit.generator.denoisers",
    "sample_blocks": "weightinit.generator.sampling",
    "GeneratorTrainingConfig": "weightinit.generator.training",
    "train_generator": "weightinit.generator.training",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'weightinit.generator' has no attribute {name!r}")
