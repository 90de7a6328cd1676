"""Composite concept texts: "sepia toning with chromatic aberration" is two edits, not one.

The retrieval prior blends the training concepts nearest to a text. For a composite text those
are concepts that match its words loosely, and the blend of the whole text falls between them.
The start is better built from the parts: each part's own blend, and the mean of those
(measured on the training compositions, each with its whole group left out of the prior:
``experiments/composed_prior.py``). A text counts as composite when it splits at a
joiner ("with", "plus", "and") into parts whose weakest similarity to a training phrasing is at
least the whole text's minus a measured margin: a text that is itself close to one training
concept, and splits into a part that matches nothing, stays whole.

The policy a generator uses is measured and stored in its ``generator_config.json``
(``composition``): ``{"rule": "mean_of_parts", "margin": m}``, where a split is taken when the
weakest part's similarity is at least the whole text's minus ``m``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from weightinit.errors import WeightinitError

#: How a composite text joins its parts, tried in this order; the first that splits wins.
JOINERS = (" with ", " plus ", " and ")
#: Verbs that the whole text applies to each part ("remove A and B": remove A, remove B).
LEADING_VERBS = ("add", "remove", "undo")
RULES = ("mean_of_parts",)


def split_parts(text: str) -> list[str]:
    """The parts of a composite phrasing, each with the text's leading verb; ``[text]`` if none."""
    t = " ".join(text.split())
    verb = next((v for v in LEADING_VERBS if t.lower().startswith(v + " ")), None)
    body = t[len(verb) + 1 :] if verb else t
    for joiner in JOINERS:
        if joiner in body:
            parts = [p.strip() for p in body.split(joiner, 1)]
            if all(parts):
                return [f"{verb} {p}" if verb else p for p in parts]
    return [t]


@dataclass(frozen=True)
class CompositionPolicy:
    """When a text is composed from its parts, and how (see the module docstring)."""

    rule: str = "mean_of_parts"
    margin: float = 0.0

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise WeightinitError(f"composition rule must be one of {RULES}, got {self.rule!r}")

    def accepts(self, whole_similarity: float, part_similarities: list[float]) -> bool:
        return len(part_similarities) > 1 and min(part_similarities) >= whole_similarity - self.margin

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> CompositionPolicy | None:
        if data is None:
            return None
        try:
            return cls(rule=str(data["rule"]), margin=float(data["margin"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise WeightinitError(f"invalid composition policy {data!r}: {exc}") from None
