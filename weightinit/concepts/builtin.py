"""The built-in concept catalog, registered through the ``register_concepts`` hook.

Eight families: ``inverse`` (sketch / line art / B&W / sepia / halftone ... -> photo),
``restoration`` (blurred, noisy, pixelated, low-res, JPEG, under/over-exposed, hazy, faded,
colour-cast -> clean), ``style`` (photo -> sepia, pencil, ink, watercolour, oil, cartoon,
halftone, emboss, pop art, posterize, duotone), ``color_grading``, ``tone``, ``effects``,
``atmosphere`` and ``composition`` (two edits applied in turn, at two strengths).

Held-out concepts (split ``heldout``) and why:

- ``composition``: new pairs of edits that training sees only separately.
- ``strength``: a training edit at a strength no training concept uses.
- ``phrasing``: a training edit under wordings no training concept uses.
- ``novel`` — edits with no close twin in training: ``thermal-camera`` (false-colour heat
  map), ``solarize``, ``negative``, ``infrared-film`` (channel remix), ``channel-rotate``
  (RGB -> GBR... a pure channel permutation), ``neon-edges`` (glowing edges on black),
  ``tilt-shift`` (position-dependent blur, i.e. blur as an *output*), ``light-leak`` (additive
  red-orange flare from one side) and ``color-splash`` (keep reds, grey out the rest).

Reverse concepts: every concept whose opposite edit is learnable by the catalog's rule (measured
in ``weightinit/data/reverse_learnability.json``) and not already in the catalog (``grayscale``
and ``gray-to-color`` are each other's reverse) gets a ``<id>-reverse`` concept with the swapped
pairs, the same family, split and held-out kind, and phrasings built from its ``reverse`` text.

Nothing here is trained on held-out text: the training split has no phrasing of any
held-out concept (the catalog rejects duplicate phrasings).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from importlib import resources

from weightinit.concepts import edits as E
from weightinit.concepts.catalog import reverse_twins
from weightinit.concepts.concept import Concept, PairBuilder, forward, inverse, normalise_text
from weightinit.concepts.direction import parse_direction
from weightinit.concepts.families import (
    add_atmosphere,
    add_color_grading,
    add_effects,
    add_inverse,
    add_restoration,
    add_style,
    add_tone,
)
from weightinit.hookspecs import hookimpl

# Strength words: (adverb, adjective, level noun).
LEVELS_2 = (("slightly ", "subtle", "light"), ("strongly ", "strong", "heavy"))
LEVELS_3 = (("slightly ", "subtle", "light"), ("", "moderate", "medium"), ("strongly ", "strong", "heavy"))
HELDOUT_LEVEL = ("fairly ", "noticeable", "fairly heavy")


def _fill(templates: Iterable[str], level: tuple[str, str, str]) -> tuple[str, ...]:
    adv, adj, lvl = level
    return tuple(" ".join(t.format(adv=adv, adj=adj, lvl=lvl).split()) for t in templates)


class _Builder:
    def __init__(self) -> None:
        self.concepts: list[Concept] = []
        self._specs: dict[str, tuple] = {}

    def add(self, cid, family, phrasings, reverse, build, *, split="train", kind=None, color=True, description=""):
        self.concepts.append(
            Concept(
                id=cid,
                phrasings=tuple(phrasings),
                family=family,
                split=split,
                reverse=reverse,
                build_pair=build,
                heldout_kind=kind,
                needs_color=color,
                description=description,
            )
        )
        return self.concepts[-1]

    def variants(
        self,
        base,
        family,
        templates,
        reverse,
        make: Callable,
        strengths,
        *,
        direction="forward",
        color=True,
        heldout=None,
    ):
        """One concept per strength; ``make(s)`` returns the edit (img[, rng]) -> img.
        ``heldout``: a strength to add as a held-out ``strength`` concept."""
        levels = (
            LEVELS_2 if len(strengths) == 2 else LEVELS_3 if len(strengths) == 3 else ((("", "", ""),) * len(strengths))
        )
        wrap = forward if direction == "forward" else inverse
        for s, level in zip(strengths, levels):
            cid = base if len(strengths) == 1 else f"{base}-{level[2].replace(' ', '-')}"
            self.add(
                cid,
                family,
                _fill(templates, level),
                _fill([reverse], level)[0],
                wrap(make(s)),
                color=color,
                description=f"strength {s}",
            )
            self._specs[cid] = (family, wrap, make, s, color)
        if heldout is not None:
            self.add(
                f"{base}-heldout-strength",
                family,
                _fill(templates, HELDOUT_LEVEL),
                _fill([reverse], HELDOUT_LEVEL)[0],
                wrap(make(heldout)),
                split="heldout",
                kind="strength",
                color=color,
                description=f"unseen strength {heldout} (training uses {', '.join(map(str, strengths))})",
            )

    def rephrase(self, cid, train_id, phrasings, reverse):
        family, wrap, make, s, color = self._specs[train_id]
        self.add(
            cid,
            family,
            phrasings,
            reverse,
            wrap(make(s)),
            split="heldout",
            kind="phrasing",
            color=color,
            description=f"the edit of {train_id!r} under unseen phrasings",
        )


# --- composable edits: name -> (edit(img, s, rng), three noun phrases) -------------------------
COMPOSABLE: dict[str, tuple[Callable, tuple[str, str, str]]] = {
    "warm": (lambda im, s, r: E.temperature(im, 0.8 * s), ("warm tones", "a warm grade", "warmer colours")),
    "cool": (lambda im, s, r: E.temperature(im, -0.8 * s), ("cool tones", "a cool grade", "colder colours")),
    "vignette": (lambda im, s, r: E.vignette(im, 0.9 * s), ("a vignette", "dark corners", "vignetting")),
    "sepia": (lambda im, s, r: E.sepia(im, s), ("sepia toning", "a sepia tint", "brown old-photo toning")),
    "contrast": (lambda im, s, r: E.contrast(im, 1 + 0.8 * s), ("more contrast", "punchy contrast", "higher contrast")),
    "grain": (lambda im, s, r: E.film_grain(im, s, r), ("film grain", "a grainy film look", "analog grain")),
    "desaturate": (
        lambda im, s, r: E.saturation(im, 1 - 0.8 * s),
        ("muted colours", "desaturation", "washed-out colour"),
    ),
    "saturate": (
        lambda im, s, r: E.saturation(im, 1 + 1.0 * s),
        ("vivid colours", "boosted saturation", "richer colour"),
    ),
    "fog": (lambda im, s, r: E.fog(im, 0.8 * s), ("fog", "a misty haze", "foggy air")),
    "teal_orange": (
        lambda im, s, r: E.teal_orange(im, s),
        ("a teal and orange grade", "a blockbuster colour look", "teal shadows and orange highlights"),
    ),
    "local_contrast": (
        lambda im, s, r: E.local_contrast(im, 1.5 * s),
        ("local contrast", "clarity", "crisper mid-tones"),
    ),
    "night": (lambda im, s, r: E.night(im, s), ("a night look", "day-for-night grading", "a moonlit mood")),
    "cartoon": (lambda im, s, r: E.mix(im, E.cartoon(im), s), ("a cartoon style", "a toon look", "comic shading")),
    "chroma": (
        lambda im, s, r: E.chromatic_aberration(im, 3.0 * s),
        ("chromatic aberration", "colour fringing", "lens fringes"),
    ),
    "bloom": (lambda im, s, r: E.bloom(im, s), ("a soft bloom", "glowing highlights", "a dreamy glow")),
    "pop": (
        lambda im, s, r: E.mix(im, E.pop_art(im, "warhol"), s),
        ("a pop-art palette", "Warhol colours", "screen-print colours"),
    ),
    "hue60": (lambda im, s, r: E.hue_shift(im, 60 * s), ("a hue shift", "rotated hues", "shifted colours")),
    "pencil": (
        lambda im, s, r: E.mix(im, E.pencil_sketch(im), s),
        ("a pencil-sketch look", "graphite shading", "sketchy lines"),
    ),
    "sharpen": (lambda im, s, r: E.sharpen(im, 1.5 * s), ("sharpening", "crisper detail", "an unsharp mask")),
}


def _compose(a: str, b: str, s: float):
    fa, fb = COMPOSABLE[a][0], COMPOSABLE[b][0]

    def edit(img, rng):
        return fb(fa(img, s, rng), s, rng)

    edit.__name__ = f"{a}_then_{b}"
    return forward(edit)


def _composition(bld: _Builder, a: str, b: str, strengths, *, split="train"):
    na, nb = COMPOSABLE[a][1], COMPOSABLE[b][1]
    levels = LEVELS_2 if len(strengths) == 2 else (("", "", "full"),)
    for s, (_adv, adj, lvl) in zip(strengths, levels):
        prefix = f"{adj} " if len(strengths) == 2 else ""
        phrasings = (
            f"{prefix}{na[0]} with {nb[0]}",
            f"add {prefix}{na[1]} and {nb[1]}",
            f"{nb[2]} plus {prefix}{na[2]}",
        )
        cid = f"{a}+{b}".replace("_", "-") + (f"-{lvl}" if len(strengths) == 2 else "")
        bld.add(
            cid,
            "composition",
            phrasings,
            f"remove {prefix}{na[0]} and {nb[0]}",
            _compose(a, b, s),
            split=split,
            kind="composition" if split == "heldout" else None,
            description=f"{a} then {b} at strength {s}",
        )


TRAIN_COMPOSITIONS = [
    ("warm", "vignette"),
    ("sepia", "grain"),
    ("cool", "contrast"),
    ("desaturate", "vignette"),
    ("teal_orange", "local_contrast"),
    ("fog", "warm"),
    ("cartoon", "saturate"),
    ("night", "bloom"),
    ("sepia", "contrast"),
    ("saturate", "sharpen"),
    ("cool", "fog"),
    ("pencil", "sepia"),
]
HELDOUT_COMPOSITIONS = [
    ("sepia", "chroma"),
    ("pop", "vignette"),
    ("saturate", "bloom"),
    ("teal_orange", "vignette"),
    ("night", "vignette"),
    ("contrast", "hue60"),
    ("warm", "local_contrast"),
    ("desaturate", "grain"),
]


def build_catalog() -> list[Concept]:
    """Every built-in concept but the reverse ones, in catalog order: the training families
    (:mod:`weightinit.concepts.families`), then the compositions and the held-out concepts."""
    b = _Builder()
    for add in (add_inverse, add_restoration, add_style, add_color_grading, add_tone, add_effects, add_atmosphere):
        add(b)
    _add_compositions(b)
    _add_heldout_phrasings(b)
    _add_novel(b)
    return b.concepts


def _add_compositions(b) -> None:
    """Compositions."""
    for a, c in TRAIN_COMPOSITIONS:
        _composition(b, a, c, (0.5, 1.0))
    for a, c in HELDOUT_COMPOSITIONS:
        _composition(b, a, c, (1.0,), split="heldout")


def _add_heldout_phrasings(b) -> None:
    """Held out: unseen phrasings of training edits."""
    b.rephrase(
        "old-photograph",
        "sepia-heavy",
        ("make it look like an old photograph", "antique brown print", "age this picture like a 1900s print"),
        "make an antique print look modern",
    )
    b.rephrase(
        "summer-evening",
        "warm-medium",
        ("give it a summer evening feeling", "sunny afternoon warmth", "bathe the scene in warm light"),
        "take the warm light away",
    )
    b.rephrase(
        "comic-book",
        "cartoon-medium",
        ("turn this into a comic book panel", "graphic novel illustration", "animated-movie frame style"),
        "turn a comic panel into a photo",
    )
    b.rephrase(
        "clean-grainy",
        "denoise-medium",
        ("clean up this grainy picture", "smooth away speckles", "make a speckled shot clean"),
        "add speckles to a clean picture",
    )
    b.rephrase(
        "make-it-pop",
        "saturate-medium",
        ("make the colours pop", "juicy punchy colours", "more colourful please"),
        "make the colours duller",
    )
    b.rephrase(
        "charcoal-drawing",
        "pencil-heavy",
        ("charcoal drawing of the scene", "smudgy charcoal artwork", "draw it in charcoal"),
        "charcoal drawing to photo",
    )


def _add_novel(b) -> None:
    """Held out: novel edits (no close twin in training)."""
    nov = dict(split="heldout", kind="novel")
    b.add(
        "thermal-camera",
        "style",
        ("thermal camera view", "false-colour heat map", "infrared thermography look"),
        "thermal view to photo",
        forward(E.thermal),
        color=False,
        description="novel: luminance through a heat palette",
        **nov,
    )
    b.add(
        "solarize",
        "tone",
        ("solarize the photo", "Sabattier darkroom effect", "invert the bright tones only"),
        "undo the solarization",
        forward(E.solarize),
        color=False,
        description="novel: non-monotonic tone curve",
        **nov,
    )
    b.add(
        "negative",
        "tone",
        ("photo to negative", "invert all colours", "film negative look"),
        "negative to photo",
        forward(E.negative),
        color=False,
        description="novel: full inversion",
        **nov,
    )
    b.add(
        "infrared-film",
        "color_grading",
        ("infrared film look", "Aerochrome false colour", "red foliage infrared photo"),
        "infrared film to normal colour",
        forward(E.infrared),
        description="novel: channel remix (green -> red)",
        **nov,
    )
    b.add(
        "channel-rotate",
        "color_grading",
        ("rotate the colour channels", "swap red, green and blue", "channel permutation glitch"),
        "rotate the colour channels back",
        forward(E.channel_swap),
        description="novel: RGB permutation",
        **nov,
    )
    b.add(
        "neon-edges",
        "style",
        ("glowing neon edges", "neon outline on black", "electric glowing contours"),
        "neon edges to photo",
        forward(E.neon_edges),
        description="novel: coloured edge magnitude on black",
        **nov,
    )
    b.add(
        "tilt-shift",
        "effects",
        ("tilt-shift miniature", "make it look like a toy model", "fake miniature with blurred top and bottom"),
        "remove the miniature effect",
        forward(E.tilt_shift),
        description="novel: position-dependent blur as output",
        **nov,
    )
    b.add(
        "light-leak",
        "effects",
        ("add a light leak", "red-orange film light leak", "leaky camera flare from the side"),
        "remove the light leak",
        forward(E.light_leak),
        description="novel: additive red-orange flare from the left",
        **nov,
    )
    b.add(
        "color-splash",
        "color_grading",
        ("colour splash on reds", "keep only the red colours", "selective colour: red on grey"),
        "restore colour everywhere",
        forward(E.color_splash),
        description="novel: hue-selective desaturation",
        **nov,
    )


# --- reverse concepts ---------------------------------------------------------------------------
#: Which reverses are learnable, measured by the catalog's rule (``python -m
#: weightinit.concepts.learnability --reverses --out FILE``); only those become concepts.
REVERSE_MEASUREMENTS = "reverse_learnability.json"
REVERSE_SUFFIX = "-reverse"


def swapped(build_pair: PairBuilder) -> PairBuilder:
    """The pair builder of the opposite edit: ``(target, input)``."""

    def build_reverse(photo, rng):
        a, b = build_pair(photo, rng)
        return b, a

    build_reverse.__name__ = f"reverse_{getattr(build_pair, '__name__', 'pair')}"
    return build_reverse


def reverse_phrasings(concept: Concept) -> tuple[str, ...]:
    """The reverse's wordings: the concept's own ``reverse`` text, then two more built from it."""
    d = parse_direction(concept.reverse)
    if d.form == "arrow":
        more = (f"turn {d.source} into {d.target}", f"convert {d.source} to {d.target}")
    elif d.form == "removal":
        more = (f"undo the {d.source}", f"take away the {d.source}")
    else:
        more = tuple(f"undo {p[0].lower() + p[1:]}" for p in concept.phrasings[1:3])
    return tuple(dict.fromkeys((concept.reverse, *more)))


def reverse_concept(concept: Concept) -> Concept:
    """The opposite edit of ``concept`` as a concept of its own (same family, split and kind)."""
    return Concept(
        id=concept.id + REVERSE_SUFFIX,
        phrasings=reverse_phrasings(concept),
        family=concept.family,
        split=concept.split,
        reverse=concept.text,
        build_pair=swapped(concept.build_pair),
        heldout_kind=concept.heldout_kind,
        needs_color=concept.needs_color,
        description=f"the reverse of {concept.id!r}",
        reverse_of=concept.id,
    )


def reverse_measurements() -> dict[str, dict]:
    """The committed learnability measurements of each concept's reverse, by concept id."""
    path = resources.files("weightinit") / "data" / REVERSE_MEASUREMENTS
    if not path.is_file():
        return {}
    return {row["forward"]: row for row in json.loads(path.read_text())["reverses"]}


def catalog_with_reverses() -> list[Concept]:
    """The built-in concepts, then the reverse of each whose reverse is learnable and has no
    twin among them (a reverse that is not learnable is no concept: CycleGAN's ``netG_B`` then
    gets the generator's start for the reverse text, which the directional text conditioning
    keeps apart from the forward concept's)."""
    concepts = build_catalog()
    twins = reverse_twins(concepts)
    measured = reverse_measurements()
    taken = {normalise_text(p) for c in concepts for p in c.phrasings}
    out = list(concepts)
    for c in concepts:
        if c.id in twins or not measured.get(c.id, {}).get("passed", False):
            continue
        rev = reverse_concept(c)
        free = tuple(p for p in rev.phrasings if normalise_text(p) not in taken)
        if not free:
            continue
        taken.update(normalise_text(p) for p in free)
        out.append(dataclasses.replace(rev, phrasings=free))
    return out


@hookimpl
def register_concepts(register):
    for concept in catalog_with_reverses():
        register(concept)
