"""Which way an edit goes: the source and target of a concept's phrasing, and its reverse.

"photo to sepia" and "sepia to photo" are different concepts, but a mean-pooled sentence
embedding hardly tells them apart (MiniLM cosine 0.978). The generator's text side therefore
embeds the source and the target of a phrasing apart (``weightinit.generator.text``), and the
CycleGAN adapter words ``netG_B``'s concept as the reverse of ``netG_A``'s. Both read a phrasing
with :func:`parse_direction`, a few rules for how English words an edit:

- ``X to Y``, ``X into Y``, ``turn X into Y``, ``convert X to Y``, ``X -> Y``: from X to Y;
- ``add X to Y``, ``restore X to Y``, ``apply X to Y``: a verb phrase first means "Y, given X";
- ``make Y from X``, ``recover Y from X``: from X;
- ``remove X``, ``undo X``, ``take X away``, ``get rid of X``: from "X" to a plain photo;
- anything else (``add film grain``, ``make it foggy``): from a photo to the phrase without
  its leading verb.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: What a phrasing without a source edits.
PLAIN_SOURCE = "photo"

_VERBS = (
    "add",
    "apply",
    "give it",
    "give the photo",
    "give",
    "make it",
    "make the photo",
    "make the image",
    "make",
    "turn it into",
    "turn",
    "convert",
    "render it as",
    "render as",
    "render",
    "paint it as",
    "paint it in",
    "paint it",
    "draw it as",
    "draw it with",
    "draw it in",
    "draw it",
    "print it as",
    "bring",
    "restore",
    "recover",
    "put",
)
_REMOVERS = ("remove", "undo", "get rid of", "take away", "erase", "strip", "reverse")
_ARROW = re.compile(r"\s*(?:->|→|=>|⇒|\s2\s)\s*")
_ARTICLE = re.compile(r"^(?:the|a|an|this|that|its|some)\s+")


@dataclass(frozen=True)
class Direction:
    """The ``source`` and ``target`` a phrasing names, and how it named them: ``"arrow"`` (both
    named, "X to Y"), ``"removal"`` ("remove X": from X to a plain photo) or ``"implicit"`` (no
    source: from a plain photo)."""

    source: str
    target: str
    form: str


def _strip(text: str, prefixes: tuple[str, ...]) -> tuple[str, bool]:
    for p in sorted(prefixes, key=len, reverse=True):
        if text == p or text.startswith(p + " "):
            return text[len(p) :].strip(), True
    return text, False


def _noun(text: str) -> str:
    text = text.strip(" .,!?;:'\"")
    while True:
        stripped = _ARTICLE.sub("", text)
        if stripped == text:
            return text
        text = stripped


def parse_direction(text: str) -> Direction:
    """Source and target of one phrasing (lower-cased, whitespace collapsed)."""
    t = " ".join(str(text).lower().split()).strip(" .!?")
    parts = _ARROW.split(t, maxsplit=1)
    if len(parts) == 2 and all(parts):
        return Direction(_noun(parts[0]), _noun(parts[1]), "arrow")
    rest, removing = _strip(t, _REMOVERS)
    if removing:
        rest = re.sub(r"\s+(?:away|back)$", "", rest)
        return Direction(_noun(rest) or t, PLAIN_SOURCE, "removal")
    if t.startswith("take ") and t.endswith(" away"):
        return Direction(_noun(t[5:-5]), PLAIN_SOURCE, "removal")
    m = re.match(r"^(?:turn|convert|change|transform)\s+(.+?)\s+(?:back\s+)?(?:into|to)\s+(.+)$", t)
    if m:
        return Direction(_noun(m.group(1)), _noun(m.group(2)), "arrow")
    m = re.match(r"^(.+?)\s+from\s+(.+)$", t)
    if m:
        target, _ = _strip(m.group(1), _VERBS)
        return Direction(_noun(m.group(2)), _noun(target) or t, "arrow")
    m = re.match(r"^(.+?)\s+(?:back\s+)?(?:to|into)\s+(.+)$", t)
    if m:
        left, right = m.group(1), m.group(2)
        stripped, had_verb = _strip(left, _VERBS)
        if had_verb:  # "add colour to a monochrome picture": from the picture, to colour
            return Direction(_noun(right), _noun(stripped) or left, "arrow")
        return Direction(_noun(left), _noun(right), "arrow")
    stripped, _ = _strip(t, _VERBS)
    return Direction(PLAIN_SOURCE, _noun(stripped) or t, "implicit")


def reverse_text(text: str) -> str:
    """The phrasing of the opposite edit: ``"Y to X"`` for ``"X to Y"``, ``"remove X"`` for
    ``"add X"`` and ``"add X"`` for ``"remove X"``."""
    d = parse_direction(text)
    if d.form == "implicit":
        return f"remove {d.target}"
    if d.form == "removal":
        return f"add {d.source}"
    return f"{d.target} to {d.source}"
