"""Editing concepts: text plus a pair builder, collected in a plugin-extensible catalog."""

from weightinit.concepts.catalog import ConceptCatalog, default_catalog
from weightinit.concepts.concept import HELDOUT_KINDS, SPLITS, Concept, forward, inverse, normalise_text

__all__ = [
    "Concept",
    "ConceptCatalog",
    "HELDOUT_KINDS",
    "SPLITS",
    "default_catalog",
    "forward",
    "inverse",
    "normalise_text",
]
