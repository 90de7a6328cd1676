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

The catalog is a data table plus code: each concept's text (id, family, split, phrasings,
reverse wording, held-out kind, description) is a row of ``weightinit/data/builtin_concepts.json``,
and its pair builder, the edit, is here (:func:`pair_builders`), joined by id.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from importlib import resources

from weightinit.concepts import edits as E
from weightinit.concepts.concept import Concept, PairBuilder, forward, inverse, normalise_text, reverse_twins
from weightinit.concepts.direction import parse_direction
from weightinit.hookspecs import hookimpl

#: The built-in concepts' text: id, family, split, phrasings, reverse wording, held-out kind,
#: whether a pair needs a colour photo, description; one JSON object a line, in catalog order.
CONCEPT_TABLE = "builtin_concepts.json"
#: Strength level names, the last part of a variant's id (``deblur-light``, ``deblur-heavy``).
LEVELS_2 = ("light", "heavy")
LEVELS_3 = ("light", "medium", "heavy")


class _Builder:
    """Each built-in concept's pair builder, by id, in catalog order (the text is in the table)."""

    def __init__(self) -> None:
        self.builders: dict[str, PairBuilder] = {}
        self._specs: dict[str, tuple] = {}

    def add(self, cid: str, build: PairBuilder) -> None:
        if cid in self.builders:
            raise ValueError(f"built-in concept {cid!r} has two pair builders")
        self.builders[cid] = build

    def variants(self, base, make: Callable, strengths, *, direction="forward", heldout=None) -> None:
        """One concept per strength; ``make(s)`` returns the edit (img[, rng]) -> img.
        ``heldout``: a strength to add as a held-out ``strength`` concept."""
        levels = LEVELS_2 if len(strengths) == 2 else LEVELS_3 if len(strengths) == 3 else ("",) * len(strengths)
        wrap = forward if direction == "forward" else inverse
        for s, level in zip(strengths, levels):
            cid = base if len(strengths) == 1 else f"{base}-{level}"
            self.add(cid, wrap(make(s)))
            self._specs[cid] = (wrap, make, s)
        if heldout is not None:
            self.add(f"{base}-heldout-strength", wrap(make(heldout)))

    def rephrase(self, cid, train_id) -> None:
        """A held-out concept with the edit of training concept ``train_id`` (under unseen phrasings)."""
        wrap, make, s = self._specs[train_id]
        self.add(cid, wrap(make(s)))


# --- composable edits: name -> edit(img, s, rng) ------------------------------------------------
def _veiled(degrade: Callable) -> Callable:
    """A detail-destroying degradation plus the veiling glare (lowered contrast) that soft,
    compressed or upscaled photos have in practice. Pure blur / JPEG / resampling inputs sit
    so close to the photo (identity PSNR 25-30 dB) that a model trained from scratch cannot
    beat "output = input" by the 3 dB the learnability rule asks for."""

    def veiled(im):
        return E.contrast(degrade(im), 0.65)

    return veiled


COMPOSABLE: dict[str, Callable] = {
    "warm": lambda im, s, r: E.temperature(im, 0.8 * s),
    "cool": lambda im, s, r: E.temperature(im, -0.8 * s),
    "vignette": lambda im, s, r: E.vignette(im, 0.9 * s),
    "sepia": lambda im, s, r: E.sepia(im, s),
    "contrast": lambda im, s, r: E.contrast(im, 1 + 0.8 * s),
    "grain": lambda im, s, r: E.film_grain(im, s, r),
    "desaturate": lambda im, s, r: E.saturation(im, 1 - 0.8 * s),
    "saturate": lambda im, s, r: E.saturation(im, 1 + 1.0 * s),
    "fog": lambda im, s, r: E.fog(im, 0.8 * s),
    "teal_orange": lambda im, s, r: E.teal_orange(im, s),
    "local_contrast": lambda im, s, r: E.local_contrast(im, 1.5 * s),
    "night": lambda im, s, r: E.night(im, s),
    "cartoon": lambda im, s, r: E.mix(im, E.cartoon(im), s),
    "chroma": lambda im, s, r: E.chromatic_aberration(im, 3.0 * s),
    "bloom": lambda im, s, r: E.bloom(im, s),
    "pop": lambda im, s, r: E.mix(im, E.pop_art(im, "warhol"), s),
    "hue60": lambda im, s, r: E.hue_shift(im, 60 * s),
    "pencil": lambda im, s, r: E.mix(im, E.pencil_sketch(im), s),
    "sharpen": lambda im, s, r: E.sharpen(im, 1.5 * s),
}


def _compose(a: str, b: str, s: float):
    fa, fb = COMPOSABLE[a], COMPOSABLE[b]

    def edit(img, rng):
        return fb(fa(img, s, rng), s, rng)

    edit.__name__ = f"{a}_then_{b}"
    return forward(edit)


def _composition(bld: _Builder, a: str, b: str, strengths) -> None:
    for s, level in zip(strengths, LEVELS_2 if len(strengths) == 2 else ("full",)):
        cid = f"{a}+{b}".replace("_", "-") + (f"-{level}" if len(strengths) == 2 else "")
        bld.add(cid, _compose(a, b, s))


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


def pair_builders() -> dict[str, PairBuilder]:
    """Each built-in concept's pair builder, by id (the order the table lists them in)."""
    b = _Builder()
    v = b.variants

    # --- inverse: renderings back to photos ---------------------------------------------------
    b.add("sketch-to-photo", inverse(lambda im: E.pencil_sketch(im, 2.0, 0.5)))
    b.add("lineart-to-photo", inverse(lambda im: E.xdog(im)))
    b.add("color-pencil-to-photo", inverse(lambda im: E.color_pencil(im)))
    b.add("bw-to-color", inverse(E.bw_film))
    b.add("gray-to-color", inverse(E.grayscale))
    b.add("sepia-to-color", inverse(E.sepia))
    b.add("halftone-to-photo", inverse(lambda im: E.halftone(im, 4, color=True)))
    b.add("posterized-to-photo", inverse(lambda im: E.posterize_soft(im, 4, 0.05)))
    b.add("cartoon-to-photo", inverse(lambda im: E.cartoon(im)))
    b.add("watercolor-to-photo", inverse(lambda im: E.watercolor(im)))
    b.add("duotone-to-photo", inverse(lambda im: E.duotone(im)))

    # --- restoration ------------------------------------------------------------------------
    v("deblur", lambda s: _veiled(lambda im: E.gaussian_blur(im, s)), (1.0, 1.5, 2.5), direction="inverse", heldout=2.0)
    v("denoise", lambda s: lambda im, r: E.add_noise(im, s, r), (0.1, 0.15, 0.25), direction="inverse", heldout=0.2)
    v("depixelate", lambda s: _veiled(lambda im: E.pixelate(im, s)), (2, 3, 4), direction="inverse")
    v("super-resolution", lambda s: _veiled(lambda im: E.lowres(im, s)), (2, 3, 4), direction="inverse")
    v("dejpeg", lambda q: _veiled(lambda im: E.jpeg(im, q)), (30, 15, 8), direction="inverse")
    v("fix-underexposure", lambda ev: lambda im: E.exposure(im, ev), (-1.0, -2.0, -3.0), direction="inverse")
    v("fix-overexposure", lambda ev: lambda im: E.exposure(im, ev), (0.7, 1.2), direction="inverse")
    v("dehaze", lambda s: lambda im: E.fog(im, s), (0.4, 0.6, 0.8), direction="inverse")
    v("unfade", lambda s: lambda im: E.fade(im, s), (0.5, 1.0), direction="inverse")
    for name, rgb in (("warm", (1.3, 1.05, 0.7)), ("cool", (0.75, 0.95, 1.3)), ("green", (0.85, 1.25, 0.85))):
        b.add(f"remove-{name}-cast", inverse(lambda im, rgb=rgb: E.color_cast(im, rgb, 1.0)))

    # --- style ------------------------------------------------------------------------------
    v("sepia", lambda s: lambda im: E.sepia(im, s), (0.7, 0.85, 1.0), heldout=0.6)
    b.add("bw-film", forward(E.bw_film))
    b.add("grayscale", forward(E.grayscale))
    v("pencil", lambda s: lambda im: E.pencil_sketch(im, s, 0.5), (1.0, 2.0, 3.0))
    b.add("color-pencil", forward(E.color_pencil))
    v("ink", lambda s: lambda im: E.xdog(im, s), (0.8, 1.4))
    v("watercolor", lambda s: lambda im: E.watercolor(im, s), (0.8, 1.2))
    v("oil", lambda s: lambda im: E.oil_paint(im, s), (3, 4))
    v("cartoon", lambda s: lambda im: E.cartoon(im, s), (7, 5, 3))
    b.add("halftone", forward(lambda im: E.halftone(im, 4)))
    b.add("color-halftone", forward(lambda im: E.halftone(im, 4, color=True)))
    b.add("emboss", forward(lambda im: E.emboss(im, 1.0)))
    b.add("color-emboss", forward(lambda im: E.emboss(im, 1.0, color=True)))
    for pal in ("warhol", "lichtenstein", "neon", "retro"):
        b.add(f"pop-art-{pal}", forward(lambda im, pal=pal: E.pop_art(im, pal)))
    v("posterize", lambda n: lambda im: E.posterize_soft(im, n), (4, 3, 2))
    b.add("duotone-blue", forward(lambda im: E.duotone(im)))
    b.add("duotone-red", forward(lambda im: E.duotone(im, (0.3, 0.02, 0.08), (1.0, 0.75, 0.75))))

    # --- colour grading ---------------------------------------------------------------------
    v("warm", lambda s: lambda im: E.temperature(im, s), (0.6, 0.9, 1.2), heldout=1.05)
    v("cool", lambda s: lambda im: E.temperature(im, -s), (0.6, 0.9, 1.2))
    v("teal-orange", lambda s: lambda im: E.teal_orange(im, s), (1.0, 1.3, 1.6))
    v("night", lambda s: lambda im: E.night(im, s), (0.6, 1.0))
    v("sunset", lambda s: lambda im: E.sunset(im, s), (0.5, 1.0))
    v("desaturate", lambda f: lambda im: E.saturation(im, f), (0.5, 0.25, 0.0))
    v("saturate", lambda f: lambda im: E.saturation(im, f), (1.6, 2.0, 2.6))
    for deg in (30, 60, 90, 120, -30, -60):
        b.add(f"hue{deg:+d}", forward(lambda im, deg=deg: E.hue_shift(im, deg)))
    b.add("hue+45-heldout-strength", forward(lambda im: E.hue_shift(im, 45)))
    v("vintage", lambda s: lambda im: E.vintage(im, s), (0.8, 1.2))
    v("cross-process", lambda s: lambda im: E.cross_process(im, s), (1.0, 1.5))
    v("split-tone", lambda s: lambda im: E.split_tone(im, amount=s), (1.4, 2.0))
    v("bleach-bypass", lambda s: lambda im: E.bleach_bypass(im, s), (0.8, 1.2))
    b.add("tint-green", forward(lambda im: E.tint(im, -1.0)))
    b.add("tint-magenta", forward(lambda im: E.tint(im, 1.0)))

    # --- tone -------------------------------------------------------------------------------
    v("contrast-up", lambda f: lambda im: E.contrast(im, f), (1.7, 2.0, 2.4), heldout=2.2)
    v("contrast-down", lambda f: lambda im: E.contrast(im, f), (0.6, 0.45, 0.3))
    v("gamma-brighten", lambda g: lambda im: E.gamma(im, g), (0.65, 0.5, 0.38), heldout=0.57)
    v("gamma-darken", lambda g: lambda im: E.gamma(im, g), (1.3, 1.7, 2.2))
    v("local-contrast", lambda a: lambda im: E.local_contrast(im, a), (1.0, 1.8, 3.0))
    v("brighten", lambda d: lambda im: E.brightness(im, d), (0.08, 0.16))
    v("darken", lambda d: lambda im: E.brightness(im, -d), (0.08, 0.16))
    v("s-curve", lambda a: lambda im: E.s_curve(im, a), (1.5, 2.5))
    v("hdr", lambda a: lambda im: E.tone_map(im, a), (0.5, 1.0))
    v("lift-shadows", lambda a: lambda im: E.shadows_lift(im, a), (0.5, 1.0))
    v("recover-highlights", lambda a: lambda im: E.highlights_compress(im, a), (1.0, 1.6))
    b.add("auto-levels", forward(lambda im: E.auto_levels(im, 8.0, 92.0)))

    # --- effects ------------------------------------------------------------------------------
    v("vignette", lambda a: lambda im: E.vignette(im, a), (0.5, 0.8, 1.1), heldout=0.65)
    v("film-grain", lambda a: lambda im, r: E.film_grain(im, a, r), (0.8, 1.0, 1.3))
    v("chromatic-aberration", lambda p: lambda im: E.chromatic_aberration(im, p), (2.0, 3.0, 4.0))
    v("bloom", lambda a: lambda im: E.bloom(im, a), (0.5, 1.0))
    v("sharpen", lambda a: lambda im: E.sharpen(im, a), (2.5, 3.5, 5.0))
    v("scanlines", lambda a: lambda im: E.scanlines(im, a), (0.5, 1.0))

    # --- atmosphere ---------------------------------------------------------------------------
    v("fog", lambda a: lambda im: E.fog(im, a), (0.4, 0.6, 0.8), heldout=0.5)
    v("ground-mist", lambda a: lambda im: E.ground_mist(im, a), (0.5, 1.0))
    v("graduated-filter", lambda a: lambda im: E.graduated_filter(im, a), (1.2, 1.6, 2.0))
    v("sun-glare", lambda a: lambda im: E.sun_glare(im, a), (0.5, 1.0))
    v("smog", lambda a: lambda im: E.smog(im, a), (0.7, 1.0))

    # --- compositions -------------------------------------------------------------------------
    for a, c in TRAIN_COMPOSITIONS:
        _composition(b, a, c, (0.5, 1.0))
    for a, c in HELDOUT_COMPOSITIONS:
        _composition(b, a, c, (1.0,))

    # --- held out: unseen phrasings of training edits ------------------------------------------
    b.rephrase("old-photograph", "sepia-heavy")
    b.rephrase("summer-evening", "warm-medium")
    b.rephrase("comic-book", "cartoon-medium")
    b.rephrase("clean-grainy", "denoise-medium")
    b.rephrase("make-it-pop", "saturate-medium")
    b.rephrase("charcoal-drawing", "pencil-heavy")

    # --- held out: novel edits (no close twin in training) --------------------------------------
    b.add("thermal-camera", forward(E.thermal))
    b.add("solarize", forward(E.solarize))
    b.add("negative", forward(E.negative))
    b.add("infrared-film", forward(E.infrared))
    b.add("channel-rotate", forward(E.channel_swap))
    b.add("neon-edges", forward(E.neon_edges))
    b.add("tilt-shift", forward(E.tilt_shift))
    b.add("light-leak", forward(E.light_leak))
    b.add("color-splash", forward(E.color_splash))
    return b.builders


def concept_table() -> list[dict]:
    """The built-in concepts' rows, in catalog order: the data table ``weightinit/data/builtin_concepts.json``."""
    return json.loads((resources.files("weightinit") / "data" / CONCEPT_TABLE).read_text(encoding="utf-8"))


def build_catalog() -> list[Concept]:
    """The built-in concepts (reverses apart), in order: each row of the table with its pair builder."""
    rows, builders = concept_table(), pair_builders()
    ids = [row["id"] for row in rows]
    if len(set(ids)) != len(ids) or set(ids) != set(builders):
        raise ValueError(
            f"{CONCEPT_TABLE} and the built-in pair builders name other concepts: "
            f"table only {sorted(set(ids) - set(builders))[:5]}, builders only {sorted(set(builders) - set(ids))[:5]}"
        )
    return [
        Concept(
            id=row["id"],
            phrasings=tuple(row["phrasings"]),
            family=row["family"],
            split=row["split"],
            reverse=row["reverse"],
            build_pair=builders[row["id"]],
            heldout_kind=row.get("heldout_kind"),
            needs_color=row.get("needs_color", True),
            description=row.get("description", ""),
        )
        for row in rows
    ]


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
