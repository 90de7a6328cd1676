"""What a concept is: text, family, split, and a pair builder.

The pair builder is ``build_pair(photo, rng) -> (input, target)``: it receives a source photo
(float32 ``HxWx3`` in ``[0, 1]``) and a :class:`numpy.random.Generator`, and returns the pair the
generator learns to map. For forward edits ("photo to sepia") the input is the photo and the
target the edited photo; for restoration and inverse tasks ("blurred to sharp", "sketch to
photo") the *input* is the degraded rendering and the target is the photo. Use
:func:`forward` and :func:`inverse` to build one from a plain edit function.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

SPLITS = ("train", "heldout")
HELDOUT_KINDS = ("composition", "strength", "phrasing", "novel")

Edit = Callable[[np.ndarray, np.random.Generator], np.ndarray]
PairBuilder = Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def concept_group(concept_id: str) -> str:
    """The group of a concept id: concepts that are one edit at another strength, or reversed,
    share it (``sepia-light``, ``sepia-heavy-reverse`` -> ``sepia``). What a measurement leaves out
    together so that a learned part must generalise rather than look up."""
    base = concept_id.removesuffix("-reverse")
    return re.sub(r"-(light|medium|heavy|full|heldout-strength)$", "", base)


def normalise_text(text: str) -> str:
    """Lower case, single spaces: the key :meth:`ConceptCatalog.find_by_text` matches on."""
    return " ".join(text.lower().split())


@dataclass(frozen=True)
class Concept:
    """An image-editing concept.

    ``phrasings`` are different wordings of the same edit (``text`` is the first, the canonical
    one); ``reverse`` words the opposite direction (CycleGAN's B -> A generator).
    ``heldout_kind`` says why a held-out concept is held out (None for training concepts).
    ``needs_color`` is False when the pair can be built from a grey photo (a sketch, a sepia
    print); pair sources refuse grey-only photo sets for the others.
    """

    id: str
    phrasings: tuple[str, ...]
    family: str
    split: str
    reverse: str
    build_pair: PairBuilder = field(compare=False, repr=False)
    heldout_kind: str | None = None
    needs_color: bool = True
    description: str = ""
    reverse_of: str | None = None

    @property
    def direction(self) -> str:
        """``"reverse"`` for a concept made as another's opposite edit, else ``"forward"``."""
        return "forward" if self.reverse_of is None else "reverse"

    @property
    def text(self) -> str:
        return self.phrasings[0]

    def pair(self, photo: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The ``(input, target)`` pair for one photo, clipped to ``[0, 1]`` float32."""
        a, b = self.build_pair(np.asarray(photo, dtype=np.float32), np.random.default_rng(seed))
        return (np.clip(a, 0, 1).astype(np.float32), np.clip(b, 0, 1).astype(np.float32))

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "text": self.text,
            "phrasings": list(self.phrasings),
            "family": self.family,
            "split": self.split,
            "reverse": self.reverse,
            "heldout_kind": self.heldout_kind,
            "needs_color": self.needs_color,
            "description": self.description,
            "reverse_of": self.reverse_of,
        }


def probe_image(size: int = 16) -> np.ndarray:
    """A small deterministic colour image with edges, gradients and texture: what the catalog
    checks pair builders on, and how it tells two edits apart."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    r = 0.5 + 0.4 * np.sin(6 * x + 2 * y)
    g = np.where(x + y > 1.0, 0.8, 0.2).astype(np.float32) * (0.6 + 0.4 * y)
    b = 0.3 + 0.6 * x * (1 - y)
    return np.clip(np.stack([r, g, b], -1), 0, 1).astype(np.float32)


def _takes_rng(fn: Callable) -> bool:
    """Whether ``fn`` wants ``(img, rng)``: a second parameter without a default, or named rng."""
    import inspect

    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return True
    if len(params) < 2:
        return False
    second = params[1]
    return second.name in ("rng", "generator") or second.default is inspect.Parameter.empty


def forward(edit: Callable) -> PairBuilder:
    """Pair builder for a forward edit: ``(photo, edit(photo))``. ``edit`` takes ``(img)`` or
    ``(img, rng)``."""
    with_rng = _takes_rng(edit)

    def build_pair(photo: np.ndarray, rng: np.random.Generator):
        return photo, (edit(photo, rng) if with_rng else edit(photo))

    build_pair.__name__ = f"forward_{getattr(edit, '__name__', 'edit')}"
    return build_pair


def inverse(degrade: Callable) -> PairBuilder:
    """Pair builder for a restoration / inverse task: ``(degrade(photo), photo)``."""
    with_rng = _takes_rng(degrade)

    def build_pair(photo: np.ndarray, rng: np.random.Generator):
        return (degrade(photo, rng) if with_rng else degrade(photo)), photo

    build_pair.__name__ = f"inverse_{getattr(degrade, '__name__', 'degrade')}"
    return build_pair


def pair_fingerprint(concept: Concept) -> tuple[bytes, bytes]:
    """The concept's pair on the catalog's probe image: equal fingerprints, the same edit."""
    a, b = concept.pair(probe_image(), seed=1234)
    return a.tobytes(), b.tobytes()


def reverse_twins(concepts: list[Concept]) -> dict[str, str]:
    """``{concept id: id of another concept whose edit is exactly its reverse}``
    ("gray-to-color" for "grayscale")."""
    by_pair: dict = {}
    for c in concepts:  # the first registered wins: a training concept before its held-out rewording
        by_pair.setdefault(pair_fingerprint(c), c.id)
    out = {}
    for c in concepts:
        a, b = pair_fingerprint(c)
        twin = by_pair.get((b, a))
        if twin is not None and twin != c.id:
            out[c.id] = twin
    return out
