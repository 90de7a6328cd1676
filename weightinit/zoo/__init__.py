"""The weight zoo: a base generator and one aligned weight set per concept."""

from weightinit.zoo.manifest import ConceptRecord, ZooConfig, ZooManifest
from weightinit.zoo.weights import ZooWeights, concept_layout

__all__ = ["ConceptRecord", "ZooConfig", "ZooManifest", "ZooWeights", "concept_layout"]
