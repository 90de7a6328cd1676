"""When a concept counts as far from the zoo, and which start it then gets.

Measured per generator by the source repository's ``experiments/far_concepts.py`` and stored in its
``generator_config.json`` under ``far_policy``: a text whose best similarity to every training
phrasing is below ``similarity`` starts from the ``fallback`` start instead of the generated one,
the zoo mean or a broader blend of the retrieval prior (at ``temperature``); with ``blend`` it keeps
the generated start and only the warning says it is far (where every fallback measured reached the
training target later than the text's own blend). Whatever else the
measurement recorded (``measured_on`` and its numbers) travels in ``measured``, unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from weightinit.errors import CheckpointError

#: The starts a far concept can fall back to.
FAR_FALLBACKS = ("mean", "prior", "blend")


@dataclass(frozen=True)
class FarPolicy:
    similarity: float
    fallback: str
    temperature: float | None = None
    measured: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.similarity, bool) or not isinstance(self.similarity, int | float):
            raise CheckpointError(f"far_policy needs a numeric 'similarity', got {self.similarity!r:.80}")
        if self.fallback not in FAR_FALLBACKS:
            raise CheckpointError(f"far_policy fallback must be one of {FAR_FALLBACKS}, got {self.fallback!r}")
        if self.fallback == "prior" and not isinstance(self.temperature, int | float):
            raise CheckpointError("far_policy fallback 'prior' needs a numeric 'temperature'")

    @classmethod
    def from_dict(cls, data: Mapping | FarPolicy | None) -> FarPolicy | None:
        """A policy from its ``generator_config.json`` form (a policy or None as they are)."""
        if data is None or isinstance(data, FarPolicy):
            return data
        if not isinstance(data, Mapping):
            raise CheckpointError(f"far_policy must be a dict with a numeric 'similarity', got {data!r:.80}")
        known = ("similarity", "fallback", "temperature")
        return cls(
            data.get("similarity"),
            data.get("fallback"),
            data.get("temperature"),
            {k: v for k, v in data.items() if k not in known},
        )

    def to_dict(self) -> dict:
        out = {"similarity": self.similarity, "fallback": self.fallback}
        if self.temperature is not None:
            out["temperature"] = self.temperature
        return {**out, **self.measured}

    def fallback_name(self) -> str:
        """The start a far concept gets, in words."""
        if self.fallback == "prior":
            return f"broader prior blend (temperature {self.temperature})"
        if self.fallback == "blend":
            return "blend of its nearest concepts"
        return "zoo mean"
