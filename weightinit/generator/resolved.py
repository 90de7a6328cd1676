"""A concept text resolved once, into the frozen value everything after it takes.

Like diffusers' ``encode_prompt`` returning the ``prompt_embeds`` its pipeline then takes,
:meth:`WeightGenerator.resolve <weightinit.generator.model.WeightGenerator.resolve>` reads a
concept text once: it encodes the text (and its parts, for a composite text) in one call to the
text encoder, compares them with the training phrasings in one call to the retrieval prior
(:meth:`RetrievalPrior.similarity`), and decides, from those numbers and the generator's frozen
table of known phrasings, whether the text is composed of parts, whether it is far from the zoo
and which start it then falls back to. The result, a :class:`ResolvedConcept`, is what sampling,
the far-concept start, the candidate starts and ``weightinit.selection.choose_on_pairs`` take,
and what ``initialize`` reports (:class:`Provenance`).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from functools import cached_property

import torch

from weightinit.errors import FarConceptWarning
from weightinit.generator.composition import split_parts
from weightinit.generator.text import TextEmbedding


@dataclass
class Provenance:
    """What a generated start is based on: the training concepts the retrieval prior blends for
    the text, with their blend weight and text similarity (cosine of the conditioning embeddings),
    the best similarity to any training phrasing, and whether the text counts as far. ``parts``
    are the texts a composite text was built from (``weightinit.generator.composition``)."""

    text: str
    similarity: float
    concepts: list[dict]
    far: bool = False
    fallback: str | None = None
    parts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self, top: int = 3) -> str:
        """The most similar training concepts, with their similarity."""
        nearest = sorted(self.concepts, key=lambda c: -c["similarity"])[:top]
        return ", ".join(f"{c['concept']} (sim {c['similarity']:.2f})" for c in nearest) or "no training concepts"


@dataclass(frozen=True, eq=False)
class ResolvedConcept:
    """One concept text as a generator reads it (module docstring). Tensors are never changed.

    ``embedding`` is the text's condition for the denoiser (one text); ``cosines [1, P]`` its
    cosine to every training phrasing (``part_cosines [parts, P]``: its parts'), from which the
    blends at any temperature follow (``RetrievalPrior.weights_from``). ``similarities [C]`` is
    its best cosine per training concept and ``similarity`` the best of all (for a composite text,
    its farthest part's where that is nearer). ``weights [C]`` is the blend the generated start's
    centre adds to the zoo mean (the mean of the parts' blends for a composite text),
    ``fallback_weights`` the broader blend of the whole text a far text starts from instead (set
    wherever ``far_policy.fallback`` is ``"prior"``). Where the generator has a strength-sibling
    policy (``siblings``), each row's blend is re-blended among its heaviest concept's strengths
    first. Without a retrieval prior, only ``text`` and ``embedding`` are set.
    """

    text: str
    embedding: TextEmbedding
    cosines: torch.Tensor | None = None
    parts: tuple[str, ...] = ()
    part_cosines: torch.Tensor | None = None
    similarities: torch.Tensor | None = None
    similarity: float = float("nan")
    weights: torch.Tensor | None = None
    far: bool = False
    fallback: str | None = None
    fallback_weights: torch.Tensor | None = None
    #: the id of the known concept (the generator's frozen table) one of whose phrasings the text is
    #: (vouching against far only where the generator was trained on it)
    known: str | None = None
    #: the training concepts' names (``RetrievalPrior.concept_names``), for :attr:`provenance`
    concept_names: tuple[str, ...] = ()

    @cached_property
    def provenance(self) -> Provenance:
        """What the start is based on (:meth:`describe`: its five main training concepts)."""
        return self.describe()

    def describe(self, top: int = 5) -> Provenance:
        """The :class:`Provenance` of the start: the ``top`` concepts of :attr:`start_weights`
        (from a weight of 0.005), with their similarity to the text."""
        names = self.concept_names
        if self.weights is None:
            return Provenance(self.text, float("nan"), [])
        weights = self.start_weights
        uniform = self.far and self.fallback == "mean"  # every concept alike: the nearest by text are shown
        order = torch.argsort(self.similarities if uniform else weights, descending=True)[:top]
        concepts = [
            {
                "concept": names[i],
                "weight": round(float(weights[i]), 4),
                "similarity": round(float(self.similarities[i]), 4),
            }
            for i in order.tolist()
            if uniform or float(weights[i]) >= 0.005
        ]
        return Provenance(self.text, round(self.similarity, 4), concepts, self.far, self.fallback, list(self.parts))

    @property
    def start_weights(self) -> torch.Tensor | None:
        """The blend the start ``initialize`` writes is made of (far: the fallback's; the zoo mean's is uniform)."""
        if not self.far or self.fallback is None:
            return self.weights
        if self.fallback == "mean":
            return torch.full_like(self.weights, 1.0 / self.weights.numel())
        return self.fallback_weights

    def warn_if_far(self, generator_name: str, direction: str, far_policy, *, stacklevel: int = 2) -> None:
        """A :class:`FarConceptWarning` naming the text's nearest training concepts when it is far."""
        if not self.far:
            return
        prov = self.provenance
        start = (
            f"it starts from the {far_policy.fallback_name()} instead"
            if self.fallback is not None
            else "it starts from the blend of those concepts (a fallback trained slower); pairs give a better start"
        )
        warnings.warn(
            f"{self.text!r} ({direction}) is far from every concept {generator_name} was trained on "
            f"(best similarity {prov.similarity:.3f} < {far_policy.similarity:.3f}; nearest: "
            f"{prov.describe()}); {start}",
            FarConceptWarning,
            stacklevel=stacklevel + 1,
        )


def resolve_concept(gen, text: str) -> ResolvedConcept:
    """``gen``'s reading of ``text`` (``WeightGenerator.resolve``): one text-encoder call, one
    similarity call, every decision made here."""
    prior, policy = gen.prior, gen.composition
    split = split_parts(text) if prior is not None and policy is not None else [text]
    parts = split if len(split) > 1 else []
    encoded = gen.encode_text([text, *parts])
    embedding = TextEmbedding(encoded.tokens[:1], encoded.mask[:1], encoded.pooled[:1])
    if prior is None:
        return ResolvedConcept(text, embedding)
    groups = [encoded.pooled[:1]] + ([encoded.pooled[1:]] if parts else [])
    cosines, *part_cosines = prior.similarity(*groups)
    sims = prior.best_similarity(cosines)[0]
    best = float(sims.max())
    if parts:
        part_best = prior.best_similarity(part_cosines[0]).max(1).values
        if policy.accepts(best, part_best.tolist()):
            best = max(best, float(part_best.min()))  # a composite text is as near as its farthest part
        else:
            parts = []
    part_cosines = part_cosines[0] if parts else None
    rows = part_cosines if parts else cosines
    weights = prior.weights_from(rows)
    if gen.siblings is not None:  # per row: each part leans on its own edit
        weights = gen.siblings.apply(weights, prior.best_similarity(rows), prior.concept_names)
    weights = weights.mean(0)
    known = gen.phrasings.find(text)
    far_policy = gen.far_policy
    # a phrasing of a concept the generator was trained on is never far: that concept vouches for it
    # (a catalog concept it never saw, a held-out one, does not)
    vouched = known is not None and (not prior.concept_ids or known.id in prior.concept_ids)
    far = far_policy is not None and best < far_policy.similarity and not vouched
    fallback_weights = None
    if far_policy is not None and far_policy.fallback == "prior":  # the broader blend of the whole text
        fallback_weights = prior.weights_from(cosines, float(far_policy.temperature or prior.temperature))[0]
    return ResolvedConcept(
        text,
        embedding,
        cosines,
        parts=tuple(parts),
        part_cosines=part_cosines,
        similarities=sims,
        similarity=best,
        weights=weights,
        far=far,
        fallback=far_policy.fallback if far and far_policy.fallback != "blend" else None,
        fallback_weights=fallback_weights,
        known=known.id if known is not None else None,
        concept_names=prior.concept_names,
    )
