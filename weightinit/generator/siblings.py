"""Strength siblings: a text that leans on one edit blends that edit's strengths, not its neighbours.

The retrieval prior's blend is sharp (temperature 0.01 on the bundled generator): a text that
names an edit at a strength no training concept has ("fairly warmer") gets nearly all of one
training strength, chosen by how its strength words happen to embed, which is often the wrong
one. Training concepts that are one edit at several strengths, in one direction (``warm-light``,
``warm-medium``, ``warm-heavy``; their group, :func:`weightinit.concepts.concept.concept_group`,
and the ``-reverse`` suffix), are its *siblings*. The sibling policy re-blends among the siblings
of the concept the blend leans on most, at their own temperature: a broad one turns strength
words the text encoder cannot tell apart into the middle of the range.

Chosen per generator on its training concepts by ``experiments/text_policy.py`` and stored in its
``generator_config.json`` (``siblings``: ``{"temperature": t, ...measured}``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from weightinit.concepts.concept import concept_group
from weightinit.errors import CheckpointError


def sibling_keys(concept_ids: Sequence[str]) -> list[tuple[str, bool]]:
    """Each concept's (group, reversed): concepts with the same key are one edit at other strengths."""
    return [(concept_group(c), c.endswith("-reverse")) for c in concept_ids]


def sibling_weights(
    weights: torch.Tensor,
    similarities: torch.Tensor,
    concept_ids: Sequence[str],
    temperature: float,
    exclude: torch.Tensor | None = None,
) -> torch.Tensor:
    """``[Q, C]`` blend weights re-blended among the siblings of each row's heaviest concept.

    ``weights [Q, C]``: the prior's blends; ``similarities [Q, C]``: each text's best cosine to
    each concept (``RetrievalPrior.best_similarity``); ``exclude [Q, C]`` (bool): concepts a row
    may not use. A row whose heaviest concept has no sibling keeps its blend."""
    keys = sibling_keys(concept_ids)
    out = weights.clone()
    for q in range(weights.shape[0]):
        top = keys[int(weights[q].argmax())]
        members = [c for c, k in enumerate(keys) if k == top and (exclude is None or not bool(exclude[q, c]))]
        if len(members) < 2:
            continue
        idx = torch.tensor(members)
        row = torch.zeros_like(weights[q])
        row[idx] = torch.softmax(similarities[q, idx].to(torch.float32) / temperature, dim=0)
        out[q] = row
    return out


@dataclass(frozen=True)
class SiblingPolicy:
    """Re-blend among the heaviest concept's strength siblings at ``temperature`` (module docstring)."""

    temperature: float
    measured: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, int | float):
            raise CheckpointError(f"siblings needs a numeric 'temperature', got {self.temperature!r:.80}")
        if not self.temperature > 0:
            raise CheckpointError(f"siblings temperature must be positive, got {self.temperature}")

    @classmethod
    def from_dict(cls, data: Mapping | SiblingPolicy | None) -> SiblingPolicy | None:
        if data is None or isinstance(data, SiblingPolicy):
            return data
        if not isinstance(data, Mapping):
            raise CheckpointError(f"siblings must be a dict with a numeric 'temperature', got {data!r:.80}")
        return cls(data.get("temperature"), {k: v for k, v in data.items() if k != "temperature"})

    def to_dict(self) -> dict:
        return {"temperature": self.temperature, **self.measured}

    def apply(self, weights, similarities, concept_ids, exclude=None) -> torch.Tensor:
        return sibling_weights(weights, similarities, concept_ids, self.temperature, exclude)
