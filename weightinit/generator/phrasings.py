"""The known phrasings a generator resolves concepts against, frozen into its folder.

A phrasing of a concept the generator was trained on is never far (its concept vouches for it; a
catalog concept it was not trained on does not), and a known concept's
reverse (CycleGAN's ``netG_B``) is the catalog's reverse concept, or its ``reverse`` phrasing. The
catalog is extended by plugins, so reading it live would let installing a concept plugin change
what a saved generator produces. The table is therefore written into the folder when it is saved
(``phrasings.json``, by ``save_pretrained``, which ``weightinit train`` and
``weightinit.generator.export`` call) and read from there::

    {"format": 1, "weightinit_version": "0.1.0",
     "concepts": {"sepia-heavy": {"phrasings": ["photo to sepia", ...], "reverse": "sepia to photo"}, ...}}

A folder written before the table (none of the bundled ones: they were given theirs from the
catalog as it was in the repository) has no ``phrasings.json``; it reads the live catalog, and
:attr:`KnownPhrasings.source` says so.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from weightinit.concepts.concept import normalise_text
from weightinit.errors import CheckpointError
from weightinit.fileio import atomic_write_text

PHRASINGS_NAME = "phrasings.json"
PHRASINGS_FORMAT = 1
#: What :attr:`KnownPhrasings.source` says for a table that is the live catalog.
LIVE = "the live concept catalog (the folder has no phrasings.json)"


@dataclass(frozen=True)
class KnownConcept:
    id: str
    phrasings: tuple[str, ...]
    #: the text of its reverse edit: the reverse concept's text, else its own reverse phrasing
    reverse: str


@dataclass(frozen=True)
class KnownPhrasings:
    """Known concepts by phrasing (case and spacing ignored, as the catalog matches them)."""

    concepts: tuple[KnownConcept, ...]
    #: where the table comes from: the folder's file, or :data:`LIVE`
    source: str = PHRASINGS_NAME
    weightinit_version: str = ""
    _by_text: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for c in self.concepts:
            for phrase in c.phrasings:
                self._by_text.setdefault(normalise_text(phrase), c)

    @property
    def frozen(self) -> bool:
        return self.source != LIVE

    def find(self, text: str) -> KnownConcept | None:
        """The known concept one of whose phrasings is ``text``, or None."""
        return self._by_text.get(normalise_text(text))

    # --- making one -----------------------------------------------------------------------------
    @classmethod
    def from_catalog(cls, catalog=None, *, source: str = PHRASINGS_NAME) -> KnownPhrasings:
        """The table of ``catalog`` (default: the catalog of the plugins loaded now)."""
        from weightinit.concepts.catalog import default_catalog
        from weightinit.generator.config import current_version

        catalog = catalog if catalog is not None else default_catalog()
        concepts = []
        for c in catalog:
            twin = catalog.reverse_of(c)
            concepts.append(KnownConcept(c.id, tuple(c.phrasings), twin.text if twin is not None else c.reverse))
        return cls(tuple(concepts), source, current_version())

    @classmethod
    def live(cls) -> KnownPhrasings:
        """The live catalog's table, for a folder without ``phrasings.json``."""
        return cls.from_catalog(source=LIVE)

    # --- disk -----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": PHRASINGS_FORMAT,
            "weightinit_version": self.weightinit_version,
            "concepts": {c.id: {"phrasings": list(c.phrasings), "reverse": c.reverse} for c in self.concepts},
        }

    def save(self, path: str | os.PathLike) -> None:
        """One concept a line (a diff of two tables reads as the concepts that changed)."""
        data = self.to_dict()
        rows = ",\n".join(
            f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in data.pop("concepts").items()
        )
        head = json.dumps(data, ensure_ascii=False)[:-1]
        atomic_write_text(path, f'{head}, "concepts": {{\n{rows}\n}}}}\n')

    @classmethod
    def load(cls, path: str | os.PathLike) -> KnownPhrasings:
        try:
            data = json.loads(Path(path).read_text())
            if not isinstance(data, dict) or not isinstance(data.get("format"), int):
                raise ValueError("no format")
            if data["format"] > PHRASINGS_FORMAT:
                raise CheckpointError(
                    f"{path}: phrasings format {data['format']} is newer than this weightinit reads "
                    f"({PHRASINGS_FORMAT}); upgrade weightinit"
                )
            concepts = tuple(
                KnownConcept(cid, tuple(str(p) for p in entry["phrasings"]), str(entry["reverse"]))
                for cid, entry in data["concepts"].items()
            )
        except CheckpointError:
            raise
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"{path}: not a weightinit phrasings table ({exc})") from None
        return cls(concepts, PHRASINGS_NAME, str(data.get("weightinit_version", "")))

    @classmethod
    def of_folder(cls, folder: Path) -> KnownPhrasings:
        """The folder's frozen table, or the live catalog's where it has none."""
        path = folder / PHRASINGS_NAME
        return cls.load(path) if path.is_file() else cls.live()
