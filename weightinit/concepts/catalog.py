"""The concept catalog: every concept the plugins registered, validated on the way in."""

from __future__ import annotations

import difflib

import numpy as np

from weightinit.concepts.concept import (  # noqa: F401 (pair_fingerprint, reverse_twins: imported from here too)
    HELDOUT_KINDS,
    SPLITS,
    Concept,
    normalise_text,
    pair_fingerprint,
    probe_image,
    reverse_twins,
)
from weightinit.errors import WeightinitError
from weightinit.plugins import call_each_plugin, get_plugin_manager


class ConceptCatalog:
    """Concepts by id, in registration order."""

    def __init__(self) -> None:
        self._concepts: dict[str, Concept] = {}
        self._by_text: dict[str, str] = {}
        self._twins: dict[str, str] | None = None

    # -- registration -------------------------------------------------------------------------
    def register(self, concept: Concept) -> None:
        """Add a concept; raise :class:`WeightinitError` naming it if it is invalid."""
        if not isinstance(concept, Concept):
            raise WeightinitError(f"register_concepts: expected a Concept, got {type(concept).__name__}")
        cid = concept.id
        if not isinstance(cid, str) or not cid.strip() or cid != cid.strip():
            raise WeightinitError(f"concept id {cid!r} must be a non-empty string without surrounding spaces")
        if cid in self._concepts:
            raise WeightinitError(f"concept {cid!r} is registered twice")
        if not isinstance(concept.phrasings, tuple) or not concept.phrasings:
            raise WeightinitError(f"concept {cid!r} needs at least one phrasing (a tuple of strings)")
        if any(not isinstance(p, str) or not p.strip() for p in concept.phrasings):
            raise WeightinitError(f"concept {cid!r} has an empty phrasing")
        if not isinstance(concept.reverse, str) or not concept.reverse.strip():
            raise WeightinitError(f"concept {cid!r} needs a reverse phrasing")
        if concept.split not in SPLITS:
            raise WeightinitError(f"concept {cid!r} has split {concept.split!r}; expected one of {', '.join(SPLITS)}")
        if concept.split == "heldout" and concept.heldout_kind not in HELDOUT_KINDS:
            raise WeightinitError(
                f"held-out concept {cid!r} has heldout_kind {concept.heldout_kind!r}; expected one of "
                f"{', '.join(HELDOUT_KINDS)}"
            )
        if concept.split == "train" and concept.heldout_kind is not None:
            raise WeightinitError(f"training concept {cid!r} must not have a heldout_kind")
        if not concept.family or not isinstance(concept.family, str):
            raise WeightinitError(f"concept {cid!r} needs a family")
        for phrase in concept.phrasings:
            key = normalise_text(phrase)
            if key in self._by_text and self._by_text[key] != cid:
                raise WeightinitError(f"concept {cid!r}: phrasing {phrase!r} already belongs to {self._by_text[key]!r}")
        self._check_builder(concept)
        self._concepts[cid] = concept
        self._twins = None
        for phrase in concept.phrasings:
            self._by_text[normalise_text(phrase)] = cid

    @staticmethod
    def _check_builder(concept: Concept) -> None:
        img = probe_image()
        try:
            a1, b1 = concept.pair(img, seed=1234)
            a2, b2 = concept.pair(img.copy(), seed=1234)
        except Exception as exc:  # a plugin's bug, reported with its name
            raise WeightinitError(f"concept {concept.id!r}: pair builder failed on a {img.shape} image: {exc}") from exc
        for name, arr in (("input", a1), ("target", b1)):
            if arr.shape != img.shape:
                raise WeightinitError(
                    f"concept {concept.id!r}: pair builder returned {name} of shape {arr.shape}, expected {img.shape}"
                )
            if not np.isfinite(arr).all():
                raise WeightinitError(f"concept {concept.id!r}: pair builder returned non-finite {name} values")
        if not (np.array_equal(a1, a2) and np.array_equal(b1, b2)):
            raise WeightinitError(
                f"concept {concept.id!r}: pair builder is not deterministic (same photo and seed gave different pairs)"
            )

    # -- lookup -------------------------------------------------------------------------------
    def get(self, concept_id: str) -> Concept:
        try:
            return self._concepts[concept_id]
        except KeyError:
            close = difflib.get_close_matches(concept_id, list(self._concepts), n=5, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else "; `weightinit concepts` lists them"
            raise WeightinitError(f"unknown concept {concept_id!r}{hint}") from None

    def find_by_text(self, text: str) -> Concept | None:
        """The concept one of whose phrasings equals ``text`` (case and spacing ignored)."""
        cid = self._by_text.get(normalise_text(text))
        return self._concepts[cid] if cid is not None else None

    def resolve(self, id_or_text: str) -> Concept:
        """A concept by id or by exact phrasing."""
        if id_or_text in self._concepts:
            return self._concepts[id_or_text]
        found = self.find_by_text(id_or_text)
        return found if found is not None else self.get(id_or_text)

    def reverse_of(self, concept: Concept) -> Concept | None:
        """The concept that edits the other way: the one made as its reverse, the one it was made
        as the reverse of, or one whose pairs are exactly its pairs swapped; None if none is."""
        if concept.reverse_of is not None and concept.reverse_of in self._concepts:
            return self._concepts[concept.reverse_of]
        for other in self._concepts.values():
            if other.reverse_of == concept.id:
                return other
        if self._twins is None:
            self._twins = reverse_twins(list(self._concepts.values()))
        twin = self._twins.get(concept.id)
        return self._concepts[twin] if twin is not None else None

    def all(self) -> list[Concept]:
        return list(self._concepts.values())

    def by_split(self, split: str) -> list[Concept]:
        if split not in SPLITS:
            raise WeightinitError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        return [c for c in self._concepts.values() if c.split == split]

    def families(self) -> list[str]:
        return sorted({c.family for c in self._concepts.values()})

    def __contains__(self, concept_id: object) -> bool:
        return concept_id in self._concepts

    def __len__(self) -> int:
        return len(self._concepts)

    def __iter__(self):
        return iter(self._concepts.values())


def default_catalog(*, reload: bool = False) -> ConceptCatalog:
    """The catalog of every concept the loaded plugins register (built-ins included).

    Cached per set of registered plugins, so a plugin registered in-process is picked up.
    """
    global _default, _default_key

    pm = get_plugin_manager()
    key = (id(pm), tuple(sorted(name for name, _ in pm.list_name_plugin())))
    if _default is None or reload or key != _default_key:
        catalog = ConceptCatalog()
        call_each_plugin(pm, "register_concepts", register=catalog.register)
        _default, _default_key = catalog, key
    return _default


_default: ConceptCatalog | None = None
_default_key: tuple | None = None
